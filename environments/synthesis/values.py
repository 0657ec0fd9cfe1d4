"""Values for columns, drawn from a column's generator spec (``person``, ``money(2,120)``,
``future_dt``...): used by every backend's fixtures and by procedural testing (Django-free)."""

from __future__ import annotations

import datetime as dt
import random
import re
from typing import Any

from .spec import ColumnSpec

CLOCK = "2026-03-02T09:00:00Z"
GENERATOR_RE = re.compile(r"^(?P<kind>[a-z_]+)(?:\((?P<args>[^)]*)\))?$")

# Value lists for generators.
FIRST_NAMES = ("Amara", "Bruno", "Chen", "Dalia", "Emeka", "Farah", "Goran", "Hana", "Ivo", "Jun", "Kemal", "Lena",
               "Mateo", "Nadia", "Oskar", "Priya", "Quinn", "Rosa", "Sami", "Tomas", "Uma", "Vera", "Wen",
               "Ximena", "Yusuf", "Zoe", "Aiko", "Beatriz", "Cyrus", "Dmitri", "Elif", "Felix")
LAST_NAMES = ("Abara", "Bianchi", "Costa", "Dubois", "Eriksen", "Fofana", "Garcia", "Haddad", "Ito", "Jansen",
              "Kowalski", "Larsen", "Mensah", "Nakamura", "Okafor", "Petrov", "Quintero", "Rossi", "Silva",
              "Tanaka", "Usman", "Varga", "Weber", "Xu", "Yilmaz", "Zhang", "Moreau", "Novak")
CITIES = ("Lisbon", "Nairobi", "Osaka", "Porto", "Quito", "Riga", "Seville", "Tallinn", "Utrecht", "Valencia",
          "Windhoek", "Zagreb", "Accra", "Bergen", "Cork", "Dakar", "Essen", "Fukuoka", "Graz", "Hobart")
STREETS = ("Harbour Rd", "Mill Lane", "Station St", "Orchard Ave", "Canal Walk", "Hill Crescent", "Market Sq")
COMPANY_A = ("Blue", "North", "Silver", "Bright", "Cedar", "Summit", "Pioneer", "Atlas", "Harbor", "Meadow", "Nova",
             "Copper", "Falcon", "Lumen", "Oak", "Prairie")
COMPANY_B = ("Works", "Partners", "Labs", "Supply", "Collective", "Group", "Studio", "Systems", "Trading", "Co")
TITLE_ADJ = ("Golden", "Quiet", "Urban", "Coastal", "Royal", "Little", "Grand", "Hidden", "Bright", "Wild", "Modern",
             "Classic", "Silver", "Evergreen", "Sunny", "Misty")
TITLE_NOUNS: dict[str, tuple[str, ...]] = {
    "clinic": ("Health Point", "Care Clinic", "Family Practice", "Wellness Center"),
    "drug": ("Amoxil", "Cardiol", "Dermex", "Neurovit", "Pedisol", "Lumiprin", "Gastrin"),
    "lab": ("Blood Panel", "Lipid Test", "Glucose Test", "Thyroid Panel", "Vitamin D"),
    "course": ("Algebra Basics", "Intro to Python", "Spanish A2", "World History", "Music Theory", "Chemistry Lab"),
    "assignment": ("Problem Set", "Essay", "Lab Report", "Project Brief", "Quiz"),
    "depot": ("Cross Dock", "Sorting Center", "Parcel Depot", "Freight Yard"),
    "supply": ("Bubble Wrap", "Carton", "Pallet Wrap", "Tape Roll", "Label Pack"),
    "product": ("Headphones", "Desk Lamp", "Running Shoes", "Coffee Grinder", "Board Game", "Backpack", "Novel"),
    "hotel": ("Bay Hotel", "Garden Inn", "Harbor Lodge", "City Suites", "Hill Resort"),
    "room": ("Double Room", "Twin Room", "Family Suite", "Sea View Room", "Studio"),
    "tour": ("Old Town Walk", "Wine Tour", "Boat Trip", "Food Market Tour", "Sunset Hike"),
    "snack": ("Sparkling Water", "Chocolate Bar", "Trail Mix", "Juice"),
    "portfolio": ("Growth Fund", "Income Book", "Retirement Pot", "Trading Account"),
    "security": ("Acme Corp", "Globex", "Initech", "Umbrella Bond", "Stark ETF", "Wayne Fund"),
    "offering": ("Series A Float", "Green Bond Issue", "Tech IPO", "Utility Offering"),
    "building": ("Tower", "Court", "House", "Residences", "Lofts"),
    "field": ("North Field", "River Plot", "East Paddock", "Hill Acre", "Long Meadow"),
    "input": ("Seed Mix", "NPK Fertilizer", "Bio Pesticide", "Cattle Feed", "Compost"),
    "show": ("Night Shift", "Deep Blue", "Paper Moon", "Iron Coast", "Small Hours", "Open Road"),
    "episode": ("Pilot", "The Return", "Crossroads", "Homecoming", "Finale", "Aftermath"),
    "venue": ("Palace Cinema", "Arts Hall", "Open Air Stage", "Studio One", "Grand Barn", "Lakeside Pavilion"),
    "merch": ("Poster", "Mug", "T-Shirt", "Cap", "Tote Bag"),
    "job": ("Backend Engineer", "Nurse Practitioner", "Data Analyst", "Store Manager", "UX Designer"),
    "event": ("Summer Wedding", "Product Launch", "Annual Gala", "Garden Party", "Tech Summit"),
    "task": ("Book photographer", "Send invitations", "Fix login bug", "Draft budget", "Order cake"),
    "pet": ("Biscuit", "Luna", "Milo", "Pepper", "Rocky", "Nala", "Ziggy"),
    "breed": ("Labrador", "Siamese", "Beagle", "Lop", "Maine Coon"),
    "petsupply": ("Chew Toy", "Cat Litter", "Dog Food", "Leash", "Grooming Brush"),
    "home": ("Maple House", "Birch Flat", "Dune Cottage", "Cedar Loft"),
    "device": ("Hall Light", "Main Thermostat", "Front Lock", "Porch Camera", "Desk Plug"),
    "routine": ("Good Morning", "Away Mode", "Movie Night", "Bedtime", "Vacation"),
    "part": ("Battery Pack", "Sensor Module", "Smart Bulb", "Hub Adapter"),
    "team": ("Rovers", "United", "Athletic", "Wanderers", "City", "Rangers"),
    "kit": ("Home Shirt", "Away Shirt", "Training Top", "Shin Guards", "Boots"),
    "space": ("Engineering", "Onboarding", "Policies", "Research", "Support"),
    "article": ("Getting Started", "Release Process", "Incident Guide", "Style Guide", "API Overview"),
    "tag": ("how-to", "reference", "faq", "policy", "draft"),
    "project": ("Website Revamp", "Mobile App", "Data Platform", "Brand Refresh", "ERP Migration"),
    "milestone": ("Alpha", "Beta", "Launch", "Handover", "Audit"),
    "channel": ("general", "announcements", "help-desk", "random", "dev-talk"),
    "sticker": ("Cats Pack", "Retro Pack", "Emoji Plus", "Space Pack"),
}
TEXT_SNIPPETS: dict[str, tuple[str, ...]] = {
    "default": ("Requested by phone", "Follow up next week", "Customer prefers mornings", "Handle with care",
                "Priority customer", "Second attempt", "Needs manager sign-off", "Seasonal request"),
    "review": ("Great service and friendly staff", "Arrived late but worked well", "Exactly as described",
               "Would not recommend", "Good value for money", "Excellent, will come back"),
    "visit": ("Annual check-up", "Persistent cough", "Skin rash follow-up", "Back pain", "Vaccination review"),
}


class ValueMaker:
    def __init__(self, rng: random.Random, clock: str = CLOCK) -> None:
        self.rng = rng
        self.now = dt.datetime.fromisoformat(clock.replace("Z", "+00:00"))

    def make(self, col: ColumnSpec, label: str = "") -> Any:
        rng = self.rng
        m = GENERATOR_RE.match(col.generator or "")
        kind = m.group("kind") if m else col.type
        args = (m.group("args") or "") if m else ""
        if kind == "person":
            return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        if kind == "email":
            return f"{rng.choice(FIRST_NAMES).lower()}.{rng.choice(LAST_NAMES).lower()}{rng.randint(1, 99)}@example.com"
        if kind == "phone":
            return f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
        if kind == "city":
            return rng.choice(CITIES)
        if kind == "address":
            return f"{rng.randint(1, 220)} {rng.choice(STREETS)}"
        if kind == "company":
            return f"{rng.choice(COMPANY_A)} {rng.choice(COMPANY_B)}"
        if kind == "code":
            return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6))
        if kind == "title":
            nouns = TITLE_NOUNS.get(args, ("Item",))
            return f"{rng.choice(TITLE_ADJ)} {rng.choice(nouns)}"
        if kind == "text":
            pool = TEXT_SNIPPETS.get(args, TEXT_SNIPPETS["default"])
            return rng.choice(pool)
        if kind == "enum":
            return rng.choice(col.values or ["unknown"])
        if kind in ("int", "capacity", "stock"):
            lo, hi = (int(x) for x in args.split(","))
            return rng.randint(lo, hi)
        if kind == "rating":
            return rng.randint(1, 5)
        if kind in ("money", "number", "amount"):
            lo, hi = (float(x) for x in args.split(","))
            return round(rng.uniform(lo, hi), 2)
        if kind == "dob":
            return (self.now.date() - dt.timedelta(days=rng.randint(2 * 365, 80 * 365))).isoformat()
        if kind == "past_date":
            return (self.now.date() - dt.timedelta(days=rng.randint(1, 400))).isoformat()
        if kind == "future_date":
            return (self.now.date() + dt.timedelta(days=rng.randint(1, 200))).isoformat()
        if kind in ("past_dt", "created"):
            return (self.now - dt.timedelta(minutes=rng.randint(30, 90 * 24 * 60))).strftime("%Y-%m-%dT%H:%M:%SZ")
        if kind == "future_dt":
            return (self.now + dt.timedelta(minutes=rng.randint(60, 60 * 24 * 60))).replace(second=0).strftime("%Y-%m-%dT%H:%M:%SZ")
        if kind == "bool":
            return rng.random() < 0.5
        if col.type == "integer":
            return rng.randint(0, 10)
        if col.type == "number":
            return round(rng.uniform(0, 100), 2)
        return f"{label or col.name} value"
