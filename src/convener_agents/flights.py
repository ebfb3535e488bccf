"""Flights: books a flight by filling destination, origin and date, then confirming."""

from __future__ import annotations

from convener_agents.base import ConversationState, Reply, SkillAgent
from convener_agents.lexicon import NO, YES, city_after, code, find_cities, find_date


class FlightsAgent(SkillAgent):
    name = "Flights"
    role = "Flight booking agent"
    synopsis = "Books airline flights between cities."
    keyphrases = ("flight", "fly", "plane", "airline", "airport", "book a flight", "plane ticket")
    descriptions = (
        "Finds and books airline flights: destination, origin, travel date.",
        "Plane tickets between cities: one way or return, departure and arrival times, "
        "nonstop or with a connection, seats and fares.",
    )

    def greeting(self) -> str:
        return "Hi, this is Flights. Where would you like to fly?"

    def respond(self, state: ConversationState, text: str) -> Reply:
        s = state.slots
        asked = s.get("asked")
        if asked == "confirm":
            if YES.search(text) and not NO.search(text):
                ref = code("FL", s["origin"], s["destination"], s["date"])
                done = f"Booked: {s['origin']} to {s['destination']}, {s['date']}. Confirmation {ref}."
                state.slots = {"booked": ref}
                return Reply(done, done=True)
            if NO.search(text):
                s["asked"] = None
                self._fill(s, text)
                if not self._changed(s, text):
                    return Reply("Okay, not booked. What should I change?")
        else:
            self._fill(s, text)
        if "destination" not in s:
            s["asked"] = "destination"
            return Reply("Where would you like to fly to?")
        if "origin" not in s:
            s["asked"] = "origin"
            return Reply(f"A flight to {s['destination']}. Where are you flying from?")
        if "date" not in s:
            s["asked"] = "date"
            return Reply("What date would you like to travel?")
        s["asked"] = "confirm"
        return Reply(f"{s['origin']} to {s['destination']}, {s['date']}. Shall I book it?")

    def prefill(self, state: ConversationState, text: str) -> None:
        self._fill(state.slots, text)

    @staticmethod
    def _changed(s: dict[str, object], text: str) -> bool:
        return bool(find_cities(text) or find_date(text))

    @staticmethod
    def _fill(s: dict[str, object], text: str) -> None:
        dest = city_after(text, ("to", "for", "into"))
        orig = city_after(text, ("from", "leaving", "out"))
        if dest:
            s["destination"] = dest
        if orig:
            s["origin"] = orig
        if not dest and not orig:
            cities = [c for _, c in find_cities(text)]
            if cities:
                slot = s.get("asked") if s.get("asked") in ("destination", "origin") else None
                slot = slot or ("destination" if "destination" not in s else "origin")
                s[slot] = cities[0]
        if date := find_date(text):
            s["date"] = date
