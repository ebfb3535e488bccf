"""Hotels: suggests a hotel in a city and books it on confirmation."""

from __future__ import annotations

from convener_agents.base import ConversationState, Reply, SkillAgent
from convener_agents.lexicon import NO, YES, code, find_cities, find_date

HOTELS = {
    "Denver": ("The Crawford", 189),
    "Boston": ("Harbor View Inn", 229),
    "Chicago": ("Lakeside Suites", 175),
    "New York": ("Midtown Lofts", 259),
    "Seattle": ("Pike Street Hotel", 199),
    "San Francisco": ("Bayfront Lodge", 239),
}


class HotelsAgent(SkillAgent):
    name = "Hotels"
    role = "Hotel booking agent"
    synopsis = "Finds and books hotel rooms."
    keyphrases = ("hotel", "room", "stay", "accommodation", "lodging", "place to stay")
    descriptions = (
        "Suggests and books hotel rooms in a city for given nights.",
        "Somewhere to sleep: a room or suite for one or more nights, check-in and check-out "
        "dates, beds, nightly rates.",
    )

    def greeting(self) -> str:
        return "Hi, this is Hotels. Which city do you need a room in?"

    def prefill(self, state: ConversationState, text: str) -> None:
        cities = [c for _, c in find_cities(text)]
        if cities:
            state.slots["city"] = cities[0]
        if date := find_date(text):
            state.slots["date"] = date

    def respond(self, state: ConversationState, text: str) -> Reply:
        s = state.slots
        if s.get("asked") == "confirm":
            if YES.search(text) and not NO.search(text):
                name, _price = HOTELS[s["city"]]
                ref = code("HT", s["city"], name, s.get("date", ""))
                state.slots = {"booked": ref}
                return Reply(f"Booked at {name} in {s['city']}. Confirmation {ref}.", done=True)
            if NO.search(text) and not find_cities(text):
                state.slots = {}
                return Reply("Okay, no booking. Anything else about hotels?")
        cities = [c for _, c in find_cities(text)]
        if cities:
            s["city"] = cities[0]
        if date := find_date(text):
            s["date"] = date
        if "city" not in s:
            s["asked"] = "city"
            return Reply("Which city do you need a room in?")
        if s["city"] not in HOTELS:
            city = s.pop("city")
            return Reply(f"Sorry, I have no hotels in {city}. I cover {', '.join(HOTELS)}.")
        name, price = HOTELS[s["city"]]
        s["asked"] = "confirm"
        when = f" from {s['date']}" if "date" in s else ""
        return Reply(f"{name} in {s['city']} has a room{when} for {price} dollars a night. Shall I book it?")
