"""Telephony actions: hand the caller to people and systems (issue 12).

Pure pieces, tested alone: ``settings`` (the ``[transfer]`` section and its targets), ``person``
(does the caller ask for a real person?), ``transfer`` (the transfer's state machine and the
one-sentence summary for the person who answers) and ``agent_actions`` (the OFP extension an
agent uses to ask for an action, and convener's answer). ``runner`` is the thin asyncio shell
that does it on a call through ARI.
"""
