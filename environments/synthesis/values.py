"""Values for columns, drawn from a column's generator spec (``person``, ``money(2,120)``,
``future_dt``...): used by every backend's fixtures and by procedural testing (Django-free)."""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass
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
# Customers of synthesized tasks draw from wider pools than the fixtures (a batch of hundreds of
# tasks should not keep meeting the same few people); no name is an everyday word ("Will", "Park").
CUSTOMER_FIRST_NAMES = FIRST_NAMES + (
    "Adaeze", "Ahmed", "Alejandro", "Ana", "Anders", "Anika", "Arjun", "Astrid", "Ayesha", "Bilal", "Camila",
    "Carmen", "Chidi", "Daniel", "Diego", "Eitan", "Elena", "Emil", "Esra", "Fatima", "Femi", "Freya", "Gabriel",
    "Hamza", "Hiroshi", "Ines", "Ingrid", "Isabel", "Jonas", "Jorge", "Kai", "Kavya", "Kenji", "Laila", "Lars",
    "Leila", "Lucia", "Luis", "Malik", "Maya", "Mei", "Mikael", "Mina", "Nia", "Niko", "Noor", "Olga", "Omar",
    "Pablo", "Petra", "Rahul", "Ravi", "Rania", "Sara", "Sofia", "Soren", "Tariq", "Thabo", "Theo", "Valentina",
    "Victor", "Yara", "Yuki", "Zainab", "Zara")
CUSTOMER_LAST_NAMES = LAST_NAMES + (
    "Adeyemi", "Ahmadi", "Alvarez", "Andersson", "Banerjee", "Becker", "Castillo", "Chowdhury", "Delgado",
    "Diallo", "Dimitrov", "Eze", "Fernandes", "Fischer", "Gomez", "Gupta", "Hansen", "Hoffmann", "Horvat",
    "Hussain", "Ibrahim", "Jensen", "Kamau", "Kaplan", "Kim", "Kovacs", "Kruger", "Lindqvist", "Lopez",
    "Mahlangu", "Marino", "Martins", "Mendoza", "Moreno", "Mwangi", "Nguyen", "Nilsen", "Nowak", "Ortiz", "Osei",
    "Patel", "Pereira", "Popescu", "Ramos", "Reyes", "Romano", "Sato", "Schmidt", "Sharma", "Singh", "Sokolov",
    "Suzuki", "Takahashi", "Torres", "Vasquez", "Virtanen", "Wagner", "Watanabe", "Wong", "Yamamoto", "Yang",
    "Zhou", "Ziegler")
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
    "lab": ("Blood Panel", "Lipid Test", "Glucose Test", "Thyroid Panel", "Vitamin D Test"),
    "course": ("Algebra Basics", "Intro to Python", "Spanish", "World History", "Music Theory", "Chemistry Lab"),
    "assignment": ("Problem Set", "Essay", "Lab Report", "Project Brief", "Quiz"),
    "depot": ("Cross Dock", "Sorting Center", "Parcel Depot", "Freight Yard"),
    "supply": ("Bubble Wrap", "Carton", "Pallet Wrap", "Tape Roll", "Label Pack"),
    "product": ("Headphones", "Desk Lamp", "Running Shoes", "Coffee Grinder", "Board Game", "Backpack", "Rain Jacket"),
    "hotel": ("Bay Hotel", "Garden Inn", "Harbor Lodge", "City Suites", "Hill Resort"),
    "room": ("Double Room", "Twin Room", "Family Suite", "Sea View Room", "Studio"),
    "tour": ("Old Town Walk", "Wine Tour", "Boat Trip", "Food Market Tour", "Sunset Hike"),
    "snack": ("Sparkling Water", "Chocolate Bar", "Trail Mix", "Orange Juice"),
    "portfolio": ("Growth Fund", "Income Book", "Retirement Pot", "Trading Account"),
    "security": ("Acme Corp", "Globex", "Initech", "Umbrella Holdings", "Stark Industries", "Wayne Enterprises"),
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
    "task": ("Fix login bug", "Update API docs", "Migrate database", "Review pull requests", "Draft test plan"),
    "checklist": ("Book photographer", "Send invitations", "Order cake", "Confirm caterer", "Plan seating"),
    "pet": ("Biscuit", "Luna", "Milo", "Pepper", "Rocky", "Nala", "Ziggy", "Coco", "Oscar", "Bella", "Max", "Daisy",
            "Simba", "Poppy", "Teddy", "Willow", "Juniper", "Ginger", "Hazel", "Pip", "Olive", "Bruno", "Loki", "Maple"),
    "breed": ("Labrador", "Siamese", "Beagle", "Lop", "Maine Coon"),
    "petsupply": ("Chew Toy", "Cat Litter", "Dog Food", "Leash", "Grooming Brush"),
    "home": ("Maple House", "Birch Flat", "Dune Cottage", "Cedar Loft"),
    "device": ("Light", "Thermostat", "Door Lock", "Camera", "Smart Plug", "Motion Sensor"),
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


@dataclass(frozen=True)
class TitleQualifier:
    """What tells two titles of one kind apart, as people of that kind of business name things:
    a drug's strength ("Amoxil 250 mg"), a room's place ("Hallway Motion Sensor"), a channel's team
    ("design-random"). ``before`` puts it first; ``joiner`` is what stands between."""

    words: tuple[str, ...]
    before: bool = True
    joiner: str = " "

    def join(self, qualifier: str, noun: str) -> str:
        return f"{qualifier}{self.joiner}{noun}" if self.before else f"{noun}{self.joiner}{qualifier}"


TITLE_QUALIFIERS: dict[str, TitleQualifier] = {
    "drug": TitleQualifier(("10 mg", "20 mg", "50 mg", "100 mg", "250 mg", "500 mg"), before=False),
    "lab": TitleQualifier(("Fasting", "Routine", "Follow-up", "Urgent", "Annual")),
    "course": TitleQualifier(("I", "II", "III", "IV"), before=False),
    "assignment": TitleQualifier(tuple(str(n) for n in range(1, 10)), before=False),
    "security": TitleQualifier(("Class A", "Class B", "Preferred", "2030 Bond", "2035 Bond"), before=False),
    "offering": TitleQualifier(("Spring", "Autumn", "2026", "Q3", "Q4")),
    "task": TitleQualifier(("for the web app", "for the mobile app", "for release 2.1", "for release 3.0",
                            "for the billing service"), before=False),
    "checklist": TitleQualifier(("for the ceremony", "for the reception", "for the rehearsal dinner",
                                 "for the after-party"), before=False),
    "pet": TitleQualifier((), before=False),
    "breed": TitleQualifier(()),
    "device": TitleQualifier(("Kitchen", "Hallway", "Porch", "Garage", "Bedroom", "Living Room", "Office",
                              "Basement")),
    "routine": TitleQualifier(("Weekday", "Weekend", "Winter", "Summer", "Holiday")),
    "part": TitleQualifier(("Mini", "Pro", "Max", "Lite", "v2"), before=False),
    "kit": TitleQualifier(("2025", "2026", "Junior", "Retro", "Goalkeeper")),
    "space": TitleQualifier(("Handbook", "Wiki", "Hub", "Archive", "Notes"), before=False),
    "article": TitleQualifier(("for Admins", "for New Staff", "for Partners", "for Mobile", "for Support"),
                              before=False),
    "tag": TitleQualifier(("api", "billing", "mobile", "security", "onboarding"), joiner="-"),
    "channel": TitleQualifier(("eng", "ops", "design", "sales", "support", "team"), joiner="-"),
    "project": TitleQualifier(("Q1", "Q2", "Q3", "Q4", "EU", "US")),
    "milestone": TitleQualifier(("Q1", "Q2", "Q3", "Q4", "Spring", "Autumn")),
    "episode": TitleQualifier(("Part 1", "Part 2", "Part 3", "Part 4"), before=False),
    "show": TitleQualifier(("Season 1", "Season 2", "Season 3", "Season 4"), before=False),
    "job": TitleQualifier(("Senior", "Junior", "Lead", "Remote", "Part-time", "Graduate")),
    "event": TitleQualifier(("Charity", "Family", "Community", "Alumni", "Staff")),
    "portfolio": TitleQualifier(("Joint", "Personal", "Family", "Long-term", "Ethical")),
    "product": TitleQualifier(("Classic", "Deluxe", "Compact", "Premium", "Basic")),
    "petsupply": TitleQualifier(("Small", "Large", "Puppy", "Senior", "Travel")),
    "supply": TitleQualifier(("Small", "Medium", "Large", "Heavy-duty")),
    "merch": TitleQualifier(("Black", "White", "Navy", "Vintage", "Tour")),
    "snack": TitleQualifier(("Small", "Large", "Sugar-free", "Organic")),
    "input": TitleQualifier(("Organic", "Premium", "Bulk", "Spring", "Winter")),
}
DEFAULT_QUALIFIER = TitleQualifier(TITLE_ADJ)


def make_title(kind: str, rng: random.Random) -> str:
    noun = rng.choice(TITLE_NOUNS.get(kind, ("Item",)))
    qualifier = TITLE_QUALIFIERS.get(kind, DEFAULT_QUALIFIER)
    return qualifier.join(rng.choice(qualifier.words), noun) if qualifier.words else noun


def title_twin(name: str, rng: random.Random) -> tuple[str, str] | None:
    """A name of the same kind that differs from ``name`` only in its qualifier, and the word both
    share (what a search by part of the name finds both by): ("Hallway Light", "Light") for
    "Kitchen Light", ("Oak Works", "Works") for the company "Harbor Works". None when ``name`` is a
    single word (a pet's "Biscuit")."""
    for kind, nouns in TITLE_NOUNS.items():
        qualifier = TITLE_QUALIFIERS.get(kind, DEFAULT_QUALIFIER)
        for noun in nouns:
            for word in qualifier.words:
                if qualifier.join(word, noun) == name:
                    others = [w for w in qualifier.words if w != word]
                    shared = max(noun.replace("-", " ").split(), key=len)
                    return qualifier.join(rng.choice(others), noun), shared
    first, _, rest = name.partition(" ")
    if first in COMPANY_A and rest in COMPANY_B:  # "Harbor Works" -> "Oak Works"
        return f"{rng.choice([a for a in COMPANY_A if a != first])} {rest}", rest
    words = name.split()
    if len(words) < 2:
        return None
    # a name of another origin (an LLM's fixture): keep its longest word, put adjectives around it
    shared = max(words, key=len)
    twin = " ".join(w if w == shared else rng.choice([a for a in TITLE_ADJ if a not in name]) for w in words)
    return (twin, shared) if twin != name else None


TEXT_SNIPPETS: dict[str, tuple[str, ...]] = {
    "default": ("Requested by phone", "Follow up next week", "Customer prefers mornings", "Handle with care",
                "Priority customer", "Second attempt", "Needs manager sign-off", "Seasonal request"),
    "review": ("Great service and friendly staff", "Arrived late but worked well", "Exactly as described",
               "Would not recommend", "Good value for money", "Excellent, will come back"),
    "visit": ("Annual check-up", "Persistent cough", "Skin rash follow-up", "Back pain", "Vaccination review"),
    # What a customer or the staff would really write in each kind of record, so that the rows a task
    # adds do not stand out among CRM notes ("Priority customer" as a repair ticket's issue).
    "dosage": ("One tablet twice a day after meals", "Two puffs in the morning and evening", "One capsule at bedtime",
               "Apply a thin layer twice daily", "Half a tablet every morning with water",
               "One tablet every eight hours as needed", "Take with food, once daily"),
    "bill": ("Consultation and blood test", "Follow-up visit fee", "X-ray and specialist review",
             "Physiotherapy session", "Vaccination and check-up", "Prescription refill charge",
             "Lab work for the annual check-up"),
    "course": ("An introduction to the basics, with weekly exercises", "Hands-on sessions with a final project",
               "Evening classes for working adults", "A short refresher for returning learners",
               "Practice-based course in small groups", "Theory first, then guided practice"),
    "answer": ("My solution uses a loop over the list and returns the total",
               "I compared both methods and the second is faster", "I used a dictionary to count each word",
               "The proof follows by induction on n", "The answer is in the attached notes",
               "I drew the graph first, then solved for x"),
    "tracking": ("Parcel scanned at the regional hub", "Out for delivery", "Held at the depot awaiting collection",
                 "Arrived at the sorting centre", "Delivery attempted, nobody home", "Left the warehouse",
                 "Customs check completed", "Handed to the local courier"),
    "return": ("The item arrived damaged", "Wrong size delivered", "Not as described on the listing",
               "Changed my mind, still unopened", "Missing parts in the box", "Colour differs from the photos",
               "Stopped working after a week", "Ordered two by mistake"),
    "alert": ("Unusual login from a new device", "Large transfer flagged for review",
              "A withdrawal I don't recognise went out last week", "Margin level close to the limit",
              "Trade placed outside the usual hours", "Repeated failed password attempts",
              "Fees I was never told about were taken from my account"),
    "repair": ("The kitchen tap is leaking", "Heating stopped working overnight", "The front door lock is stuck",
               "Mould on the bathroom ceiling", "Strange noise from the boiler", "The bedroom window will not close",
               "The oven does not heat up", "Damp patch on the living room wall", "The toilet keeps running"),
    "cover": ("Five years of backend experience and keen to join your team",
              "I led a small design team and would love to grow with you",
              "Recent graduate with two internships in data analysis",
              "Ten years in retail management, looking for a new challenge",
              "Self-taught developer with open-source work", "Experienced nurse moving to the area"),
    "contract": ("Catering for 80 guests, three courses", "Photography for the ceremony and reception",
                 "Sound system and DJ until midnight", "Flowers for the tables and the arch",
                 "Venue hire including setup and cleanup", "Transport for guests between the two venues"),
    "incident": ("Small cut on the paw during the walk", "Ate something off the ground at the park",
                 "Limping slightly after play time", "Scratch near the left eye", "Scuffle with another dog",
                 "Sick after lunch", "Stung by a bee in the garden"),
    "device": ("The thermostat keeps losing its wifi connection", "The hallway motion sensor stopped responding",
               "The smart lock battery drains within a week", "The camera feed freezes every evening",
               "The doorbell chime is silent", "Lights turn on by themselves at night",
               "The hub restarts every few hours"),
    "injury": ("Felt pain after the sprint drill", "Twisted it during the warm-up", "Landed awkwardly after a jump",
               "Tightness after the long run", "Collided with another player", "Swelling the morning after training"),
    "article": ("How to reset a forgotten password", "A short guide to exporting your data",
                "What to do when a payment fails", "Setting up two-step sign-in", "How monthly billing works",
                "Moving your files to a new account"),
    "revision": ("Fixed the broken link in the second section", "Updated the screenshots for the new layout",
                 "Corrected a typo in the title", "Added an example for beginners", "Removed an outdated paragraph",
                 "Clarified the installation steps"),
    "feedback": ("The setup steps are out of date", "Very clear explanation, thank you",
                 "The example in the second section no longer works", "Could use a diagram",
                 "Helpful, but the video is missing", "Found a broken link at the end"),
    "time": ("Client workshop and follow-up notes", "Code review for the payments feature",
             "Drafting the quarterly report", "Site visit and measurements", "Bug fixing on the login page",
             "Team planning meeting"),
    "message": ("Our dinner plans are still on", "Running ten minutes late, save me a seat",
                "Thanks for the photos from the trip", "Can we move the call to Friday?",
                "Happy birthday! Hope you have a great day", "Did you get my email about the tickets?"),
    "abuse": ("Repeated spam links in the group chat", "Offensive language aimed at other members",
              "Fake giveaway asking for card details", "Someone is impersonating the support team",
              "Threatening messages sent in private", "The same advert posted in every thread"),
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
            return make_title(args, rng)
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
