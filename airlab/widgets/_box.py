"""What every airlab widget shares: it is built as one ipywidgets box (``self._box``),
``widget`` returns it, and leaving the object last in a cell displays it with a short
``text/plain`` (what nbval compares, and what a terminal shows).

Example:
    >>> class Hello(BoxedWidget):
    ...     def __init__(self) -> None:
    ...         import ipywidgets as w
    ...         self._box = w.VBox([w.HTML("hello")])
    >>> Hello()._repr_mimebundle_()["text/plain"]
    'Hello()'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["BoxedWidget"]


class BoxedWidget:
    """Base of the widgets: ``widget`` and the display of ``self._box``."""

    _box: Any

    @property
    def widget(self) -> ipywidgets.Box:
        """The whole widget, to ``display()`` or put in a layout."""
        return self._box

    def _plain(self) -> str:
        """The text shown where no widget can be drawn."""
        return f"{type(self).__name__}()"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self._box._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = self._plain()
        return bundle
