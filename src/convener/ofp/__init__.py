"""convener.ofp: the Open Floor Protocol (1.1.0) side of convener.

Modules, from the wire inwards:

- ``envelope``  typed envelope/event model, builders for every event type, strict writer
- ``dialog``    dialog events (text, ssml, audio features), strict writer and tolerant reader
- ``manifest``  assistant manifests and conversant identification
- ``parse``     tolerant reading of inbound 1.1.0 and 1.0.0 envelopes (``ParseError`` only)
- ``validate``  ``validate_envelope(dict)``: official schemas applied everywhere + hand checks
- ``floor``     the floor manager: pure logic, delegation to the convener, deliveries
- ``routing``   which agent answers: names, keyphrases, meaning (embeddings), the decision
- ``policy``    the built-in convener policy (whom to invite, hand-overs, faults)
- ``transport`` bounded HTTP POSTs to agents (timeouts, size limit, no redirects)
- ``directory`` the agents we may contact: config order, manifests, health, discovery
- ``identity``  our own manifest and anonymous caller URIs
- ``session``   ``FloorSession`` / ``AgentReply``: the API of the voice path and ``convener chat``
- ``endpoint``  aiohttp application where external agents POST envelopes
- ``commands``  ``convener agents``, ``convener agents serve``, ``convener chat``
- ``settings``  the ``[ofp]`` configuration section
"""
