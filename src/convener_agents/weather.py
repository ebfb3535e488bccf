"""Weather: today's weather for a handful of cities (fixed, deterministic data)."""

from __future__ import annotations

from convener_agents.base import ConversationState, Reply, SkillAgent
from convener_agents.lexicon import find_cities

WEATHER = {
    "Denver": ("sunny", 12),
    "Boston": ("cloudy with light rain", 8),
    "Chicago": ("windy", 5),
    "New York": ("partly cloudy", 10),
    "Seattle": ("rainy", 9),
    "San Francisco": ("foggy in the morning, then sunny", 16),
    "Miami": ("hot and humid", 29),
    "London": ("overcast", 11),
    "Paris": ("clear", 13),
}


class WeatherAgent(SkillAgent):
    name = "Weather"
    role = "Weather agent"
    synopsis = "Tells today's weather in a city."
    keyphrases = ("weather", "forecast", "temperature", "rain", "snow", "sunny", "cold", "warm")
    descriptions = (
        "Current weather and today's forecast for major cities.",
        "Whether it is hot or cold, raining, windy, foggy or snowing in a city today, and what to wear or bring.",
    )

    def greeting(self) -> str:
        return "Hi, this is Weather. Which city?"

    def prefill(self, state: ConversationState, text: str) -> None:
        if cities := find_cities(text):
            state.slots["city"] = cities[0][1]

    def respond(self, state: ConversationState, text: str) -> Reply:
        cities = [c for _, c in find_cities(text)]
        city = cities[0] if cities else state.slots.get("city")
        if city is None:
            return Reply("Which city would you like the weather for?")
        state.slots["city"] = city
        if city not in WEATHER:
            return Reply(f"Sorry, I don't have the weather for {city}.")
        sky, temp = WEATHER[city]
        return Reply(f"In {city} today: {sky}, {temp} degrees Celsius.")
