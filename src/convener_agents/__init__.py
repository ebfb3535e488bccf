"""Example Open Floor agents (flights, hotels, weather) served over HTTP.

They are small, deterministic and speak in short sentences because their replies are
synthesised to speech on a phone call. ``convener agents serve`` starts them on
127.0.0.1:8701-8703, where the default ``[ofp]`` settings look for them.
"""
