"""The REST adapter: one route table, endpoints per protocol, the front door, JSON codecs."""
