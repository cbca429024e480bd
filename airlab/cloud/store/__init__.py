"""The registry's rooms: :class:`airlab.cloud.registry.Registry` is assembled from them.

* :mod:`.records` - the rows as frozen dataclasses (Product, Device, Seat, Token ...);
* :mod:`.base` - the schema, the SQLite connection and its lock;
* :mod:`.products` - products, topic classes and devices;
* :mod:`.tokens` - iotTokens (``/auth/devicename``) and DeviceTokens (``regnwl``);
* :mod:`.seats` - classes, their seats and class tokens;
* :mod:`.writer` - the log writer: a queue and a thread committing in groups;
* :mod:`.reader` - reading the logs back, as records, rows or DataFrames.

Example:
    >>> from airlab.cloud.store.records import Token
    >>> Token("id", "tok", None, 0.0, 10.0).expired(10.0)
    True
"""
