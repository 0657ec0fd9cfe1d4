"""The procedural backend's vocabulary: sectors, entity archetypes, fields and business roles.

Each sector lists its entity archetypes as ``T(...)`` rows. A table's ``fields`` use a small DSL,
``name[?]:generator`` separated by spaces (``?`` marks an optional, nullable column that a domain
may leave out). ``role`` drives which business actions a table takes part in:

* ``person`` / ``provider`` / ``place``: parents that other rows point at;
* ``resource``: has a ``capacity(...)`` column, can be booked; the column is named after what is
  booked (``places_left``, ``rooms_left``, ``lots_left``...), the generator finds it by its generator;
* ``booking``: links a person (or a person's record) to a resource (booking decrements capacity,
  cancelling restores it); its ``quantity`` range caps the places one booking may take;
* ``item``: a catalogue entry; with a ``stock(...)`` column it can be restocked or drawn down
  (only goods have stock: apartments or securities are not restocked);
* ``invoice``: has an ``amount(...)`` column and a payment state machine;
* ``payment``: child of an invoice;
* ``record``: any other child (reviews, readings, notes, tickets...).

Names separated by ``|`` are alternatives a domain picks one of (``"patients|clients"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class T:
    table: str  # "patients|clients"
    label: str  # "patient|client" (aligned with table alternatives)
    prefix: str
    role: str
    fields: str
    parents: str = ""  # space-separated labels (first alternative) of parent tables
    machine: str = ""
    core: bool = False


@dataclass(frozen=True)
class Sector:
    key: str
    nouns: tuple[str, ...]
    description: str
    keywords: tuple[str, ...]
    tables: tuple[T, ...] = field(default_factory=tuple)


# State machines: initial state, transitions (verb, from states, to state), terminal states.
MACHINES: dict[str, dict] = {
    "booking": {"initial": "pending", "transitions": [("confirm", ["pending"], "confirmed"),
                                                      ("complete", ["confirmed"], "completed")],
                "cancel": ("cancel", ["pending", "confirmed"], "cancelled"),
                "states": ["pending", "confirmed", "completed", "cancelled"]},
    "invoice": {"initial": "issued", "transitions": [("void", ["issued"], "void")],
                "states": ["issued", "partially_paid", "paid", "void"]},
    "listing": {"initial": "draft", "transitions": [("publish", ["draft", "paused"], "active"),
                                                    ("pause", ["active"], "paused"),
                                                    ("close", ["active", "paused"], "closed")],
                "states": ["draft", "active", "paused", "closed"]},
    # A customer closes a request they no longer need; a closed one stays closed (only a resolved one
    # can be reopened).
    "ticket": {"initial": "open", "transitions": [("start", ["open"], "in_progress"),
                                                  ("resolve", ["in_progress"], "resolved"),
                                                  ("reopen", ["resolved"], "open"),
                                                  ("close", ["open", "in_progress", "resolved"], "closed")],
               "states": ["open", "in_progress", "resolved", "closed"]},
    "application": {"initial": "submitted", "transitions": [("screen", ["submitted"], "screening"),
                                                            ("shortlist", ["screening"], "shortlisted"),
                                                            ("reject", ["submitted", "screening", "shortlisted"], "rejected"),
                                                            ("accept", ["shortlisted"], "accepted")],
                    "states": ["submitted", "screening", "shortlisted", "accepted", "rejected"]},
    "shipment": {"initial": "created", "transitions": [("dispatch", ["created"], "in_transit"),
                                                       ("deliver", ["in_transit"], "delivered"),
                                                       ("hold", ["created", "in_transit"], "on_hold"),
                                                       ("release", ["on_hold"], "created")],
                 "states": ["created", "in_transit", "on_hold", "delivered"]},
    "task": {"initial": "todo", "transitions": [("start", ["todo", "blocked"], "in_progress"),
                                                ("block", ["todo", "in_progress"], "blocked"),
                                                ("finish", ["in_progress"], "done")],
             "states": ["todo", "in_progress", "blocked", "done"]},
    "order": {"initial": "placed", "transitions": [("approve", ["placed"], "approved"),
                                                   ("fulfil", ["approved"], "fulfilled"),
                                                   ("reject", ["placed"], "rejected")],
              "states": ["placed", "approved", "fulfilled", "rejected"]},
    "resource": {"initial": "open", "transitions": [("close", ["open"], "closed"),
                                                    ("reopen", ["closed"], "open")],
                 "states": ["open", "closed"]},
    "account": {"initial": "active", "transitions": [("suspend", ["active"], "suspended"),
                                                     ("reactivate", ["suspended"], "active")],
                "states": ["active", "suspended"]},
    # Devices and routines are switched on and off, not suspended.
    "switch": {"initial": "enabled", "transitions": [("disable", ["enabled"], "disabled"),
                                                     ("enable", ["disabled"], "enabled")],
               "states": ["enabled", "disabled"]},
    # Homework is graded, not resolved.
    "submission": {"initial": "submitted", "transitions": [("grade", ["submitted"], "graded"),
                                                           ("return", ["graded"], "returned")],
                   "states": ["submitted", "graded", "returned"]},
    # A revision of an article is approved or rejected by a reviewer.
    "revision": {"initial": "submitted", "transitions": [("approve", ["submitted"], "approved"),
                                                         ("reject", ["submitted"], "rejected")],
                 "states": ["submitted", "approved", "rejected"]},
    # A planned event is confirmed, then held, or called off.
    "event": {"initial": "planning", "transitions": [("confirm", ["planning"], "confirmed"),
                                                     ("complete", ["confirmed"], "completed"),
                                                     ("call_off", ["planning", "confirmed"], "called_off")],
              "states": ["planning", "confirmed", "completed", "called_off"]},
    # Leases and vendor contracts are signed, then run until they are terminated.
    "contract": {"initial": "pending", "transitions": [("sign", ["pending"], "signed"),
                                                       ("decline", ["pending"], "declined"),
                                                       ("terminate", ["signed"], "terminated")],
                 "states": ["pending", "signed", "declined", "terminated"]},
    "crop": {"initial": "growing", "transitions": [("harvest", ["growing"], "harvested"),
                                                   ("abandon", ["growing"], "abandoned")],
             "states": ["growing", "harvested", "abandoned"]},
    "lot": {"initial": "stored", "transitions": [("sell", ["stored"], "sold"),
                                                 ("discard", ["stored"], "discarded")],
            "states": ["stored", "sold", "discarded"]},
    "milestone": {"initial": "pending", "transitions": [("reach", ["pending"], "reached"),
                                                        ("miss", ["pending"], "missed")],
                  "states": ["pending", "reached", "missed"]},
    # A trade order is filled by the market or cancelled by the client before that.
    "trade": {"initial": "placed", "transitions": [("fill", ["placed"], "filled"),
                                                   ("cancel", ["placed"], "cancelled")],
              "states": ["placed", "filled", "cancelled"]},
    "match": {"initial": "scheduled", "transitions": [("postpone", ["scheduled"], "postponed"),
                                                      ("reschedule", ["postponed"], "scheduled"),
                                                      ("play", ["scheduled"], "played")],
              "states": ["scheduled", "postponed", "played"]},
}

_PERSON = "full_name:person email:email phone?:phone city?:city"

SECTORS: tuple[Sector, ...] = (
    Sector("healthcare", ("Telehealth Service", "Clinic Network", "Care Center", "Medical Group"),
           "patients book appointment slots with clinicians, get prescriptions and settle bills",
           ("healthcare", "telemedicine", "appointments", "billing"), (
        T("patients|clients", "patient|client", "pat", "person", _PERSON + " date_of_birth:dob insurance_tier:enum(basic,silver,gold)", core=True),
        T("clinicians|doctors", "clinician|doctor", "cln", "provider", "full_name:person specialty:enum(general,cardiology,pediatrics,dermatology,neurology) years_experience:int(1,35) rating?:rating", machine="account", core=True),
        T("clinics", "clinic", "cli", "place", "name:title(clinic) city:city address:address"),
        T("appointment_slots|visit_slots", "appointment slot|visit slot", "slt", "resource", "starts_at:future_dt duration_minutes:int(15,60) places_left:capacity(1,4)", parents="clinician", machine="resource", core=True),
        T("appointments|visits", "appointment|visit", "apt", "booking", "quantity:int(1,1) reason:text(visit) created_at:created", parents="patient appointment_slot", machine="booking", core=True),
        T("medications", "medication", "med", "item", "name:title(drug) unit_price:money(2,120) stock_units:stock(5,200) form:enum(tablet,syrup,injection,cream)"),
        T("prescriptions", "prescription", "rx", "record", "dosage:text(dosage) refills:int(0,5) issued_on:past_date", parents="patient clinician medication", machine="order"),
        T("medical_bills|invoices", "medical bill|invoice", "bil", "invoice", "amount_due:amount(40,900) issued_on:past_date memo?:text(bill)", parents="patient", machine="invoice"),
        T("bill_payments|payments", "bill payment|payment", "pay", "payment", "amount:money(10,900) method:enum(card,cash,insurance,transfer) paid_at:created", parents="medical_bill"),
        T("lab_results", "lab result", "lab", "record", "test_name:title(lab) value:number(0,300) flagged:bool collected_on:past_date", parents="patient"),
    )),
    Sector("education", ("Online Academy", "Learning Platform", "Tutoring Hub", "Language School"),
           "students enrol in course sessions taught by instructors, submit assignments and pay tuition",
           ("education", "online learning", "courses", "enrolment"), (
        T("students|learners", "student|learner", "stu", "person", _PERSON + " level:enum(beginner,intermediate,advanced)", machine="account", core=True),
        T("instructors|tutors", "instructor|tutor", "ins", "provider", "full_name:person subject:enum(math,science,languages,history,programming,music) hourly_rate:money(20,150)", core=True),
        T("courses", "course", "crs", "listing", "title:title(course) category:enum(math,science,languages,history,programming,music) credits:int(1,6) description?:text(course)", parents="instructor", machine="listing", core=True),
        T("class_sessions|cohorts", "class session|cohort", "ses", "resource", "starts_at:future_dt seats_left:capacity(2,30) room?:code", parents="course", machine="resource", core=True),
        T("enrollments|registrations", "enrollment|registration", "enr", "booking", "quantity:int(1,1) created_at:created", parents="student class_session", machine="booking", core=True),
        T("assignments", "assignment", "asg", "record", "title:title(assignment) due_on:future_date max_points:int(10,100)", parents="course"),
        T("submissions", "submission", "sub", "record", "score?:number(0,100) submitted_at:created answer_text:text(answer)", parents="assignment student", machine="submission"),
        T("tuition_invoices", "tuition invoice", "tui", "invoice", "amount_due:amount(100,3000) issued_on:past_date", parents="student", machine="invoice"),
        T("tuition_payments", "tuition payment", "tpy", "payment", "amount:money(50,3000) method:enum(card,transfer,scholarship) paid_at:created", parents="tuition_invoice"),
    )),
    Sector("logistics", ("Express Logistics", "Freight Network", "Courier Service", "Parcel Hub"),
           "shippers create shipments between depots, couriers move them, and invoices are settled",
           ("logistics", "shipping", "parcels", "couriers"), (
        T("shippers|senders", "shipper|sender", "shp", "person", "company_name:company contact_email:email phone?:phone tier:enum(standard,priority,enterprise)", machine="account", core=True),
        T("depots|hubs", "depot|hub", "dep", "place", "name:title(depot) city:city dock_doors:int(2,40)", core=True),
        T("couriers|drivers", "courier|driver", "cou", "provider", "full_name:person vehicle:enum(van,truck,bike,cargo_bike) max_load_kg:int(50,2000)", machine="account", core=True),
        T("shipments|consignments", "shipment|consignment", "shm", "record", "weight_kg:number(0.5,900) declared_value:money(5,5000) destination_city:city created_at:created", parents="shipper depot", machine="shipment", core=True),
        T("delivery_routes|routes", "delivery route|route", "rte", "resource", "route_date:future_date stops_left:capacity(3,25) region:enum(north,south,east,west,central)", parents="courier depot", machine="resource"),
        T("route_stops|stops", "route stop|stop", "stp", "booking", "quantity:int(1,1) created_at:created", parents="delivery_route shipment", machine="booking"),
        T("packing_supplies", "packing supply", "sup", "item", "name:title(supply) unit_cost:money(0.2,15) on_hand:stock(0,500)", parents="depot"),
        T("freight_invoices", "freight invoice", "fin", "invoice", "amount_due:amount(20,4000) issued_on:past_date", parents="shipper", machine="invoice"),
        T("freight_payments", "freight payment", "fpy", "payment", "amount:money(10,4000) method:enum(card,transfer,account_credit) paid_at:created", parents="freight_invoice"),
        T("tracking_events", "tracking event", "trk", "record", "event_type:enum(scanned,loaded,unloaded,delayed,exception) recorded_at:past_dt note?:text(tracking)", parents="shipment"),
    )),
    Sector("retail", ("Marketplace", "Online Store", "Outlet", "Second-hand Market"),
           "buyers order listed products from sellers, stock is tracked and orders are paid and reviewed",
           ("e-commerce", "retail", "orders", "inventory"), (
        T("buyers|customers", "buyer|customer", "cus", "person", _PERSON + " loyalty_points:int(0,5000)", machine="account", core=True),
        T("sellers|merchants", "seller|merchant", "sel", "provider", "shop_name:company rating?:rating joined_on:past_date", machine="account", core=True),
        T("products|listings", "product|listing", "prd", "item", "title:title(product) category:enum(electronics,home,fashion,books,sports,toys) price:money(3,900) stock:stock(0,120) condition?:enum(new,like_new,used)", parents="seller", core=True),
        T("purchase_orders|orders", "purchase order|order", "ord", "invoice", "amount_due:amount(10,2000) created_at:created shipping_city:city", parents="buyer", machine="invoice", core=True),
        T("order_lines", "order line", "oln", "record", "quantity:int(1,5) unit_price:money(3,900)", parents="purchase_order product"),
        T("order_payments", "order payment", "opy", "payment", "amount:money(5,2000) method:enum(card,wallet,transfer) paid_at:created", parents="purchase_order"),
        T("product_reviews|reviews", "product review|review", "rev", "record", "stars:rating comment:text(review) posted_at:created", parents="product buyer"),
        T("return_requests|returns", "return request|return", "ret", "record", "reason:text(return) created_at:created", parents="purchase_order", machine="ticket"),
        T("flash_sales|promotions", "flash sale|promotion", "fls", "resource", "starts_at:future_dt units_left:capacity(5,50) discount_pct:int(5,60)", parents="product", machine="resource"),
        T("sale_claims", "sale claim", "clm", "booking", "quantity:int(1,2) created_at:created", parents="buyer flash_sale", machine="booking"),
    )),
    Sector("hospitality", ("Hotel Group", "Travel Agency", "Guesthouse Collective", "Resort"),
           "guests reserve rooms and tours, are billed for stays and leave reviews",
           ("travel", "hotels", "reservations", "tours"), (
        T("guests|travellers", "guest|traveller", "gst", "person", _PERSON + " nationality:enum(fr,de,jp,br,us,in,ke,au)", core=True),
        T("properties|hotels", "property|hotel", "prp", "place", "name:title(hotel) city:city stars:int(1,5)", machine="listing", core=True),
        T("room_types|room_blocks", "room type|room block", "rmt", "resource", "name:title(room) nightly_rate:money(40,600) rooms_left:capacity(1,12)", parents="property", machine="resource", core=True),
        T("reservations|stays", "reservation|stay", "rsv", "booking", "quantity:int(1,3) check_in:future_date nights:int(1,14) created_at:created", parents="guest room_type", machine="booking", core=True),
        T("tours|excursions", "tour|excursion", "tou", "resource", "title:title(tour) starts_at:future_dt spots_left:capacity(4,40) price:money(15,300)", parents="property", machine="resource"),
        T("tour_bookings", "tour booking", "tbk", "booking", "quantity:int(1,4) created_at:created", parents="guest tour", machine="booking"),
        T("folios|guest_bills", "folio|guest bill", "fol", "invoice", "amount_due:amount(50,5000) issued_on:past_date", parents="guest", machine="invoice"),
        T("folio_payments", "folio payment", "fpm", "payment", "amount:money(20,5000) method:enum(card,cash,voucher) paid_at:created", parents="folio"),
        T("stay_reviews", "stay review", "srv", "record", "stars:rating comment:text(review) posted_at:created", parents="guest property"),
        T("minibar_items", "minibar item", "mbi", "item", "name:title(snack) price:money(2,40) stock:stock(0,60)", parents="property"),
    )),
    Sector("finance", ("Stock Trading Desk", "Credit Union", "Wealth Platform", "Brokerage"),
           "clients hold accounts, place orders on instruments, receive statements and pay fees",
           ("finance", "trading", "accounts", "orders"), (
        T("clients|investors", "client|investor", "clt", "person", _PERSON + " risk_profile:enum(conservative,balanced,aggressive)", machine="account", core=True),
        T("advisors", "advisor", "adv", "provider", "full_name:person license_no:code region:enum(emea,amer,apac)", core=True),
        T("portfolios|accounts", "portfolio|account", "pfl", "record", "name:title(portfolio) currency:enum(usd,eur,gbp,jpy) cash_balance:number(0,250000) opened_on:past_date", parents="client advisor", machine="account", core=True),
        T("instruments|securities", "instrument|security", "ins", "item", "symbol:code name:title(security) last_price:money(1,900) lots_available:int(0,10000) asset_class:enum(equity,bond,etf,fund)", core=True),
        T("trade_orders|orders", "trade order|order", "tro", "record", "side:enum(buy,sell) lots:int(1,500) limit_price:money(1,900) created_at:created", parents="portfolio instrument", machine="trade", core=True),
        T("fee_invoices", "fee invoice", "fee", "invoice", "amount_due:amount(5,800) issued_on:past_date", parents="client", machine="invoice"),
        T("fee_payments", "fee payment", "fpa", "payment", "amount:money(5,800) method:enum(debit,transfer) paid_at:created", parents="fee_invoice"),
        T("ipo_allocations|offerings", "ipo allocation|offering", "ipo", "resource", "title:title(offering) closes_on:future_date lots_left:capacity(5,100)", parents="instrument", machine="resource"),
        T("ipo_subscriptions", "ipo subscription", "ips", "booking", "quantity:int(1,10) created_at:created", parents="client ipo_allocation", machine="booking"),
        T("compliance_alerts", "compliance alert", "cal", "record", "severity:enum(low,medium,high) summary:text(alert) raised_at:created", parents="portfolio", machine="ticket"),
    )),
    Sector("real_estate", ("Property Management", "Realty Office", "Lettings Agency", "Co-living Operator"),
           "tenants lease units in buildings, file maintenance requests and pay rent",
           ("real estate", "rentals", "leases", "maintenance"), (
        T("tenants|residents", "tenant|resident", "ten", "person", _PERSON + " household_size:int(1,6)", machine="account", core=True),
        T("buildings", "building", "bld", "place", "name:title(building) city:city floors:int(1,40) year_built?:int(1950,2024)", core=True),
        T("units|apartments", "unit|apartment", "unt", "place", "label:code bedrooms:int(0,5) monthly_rent:money(400,6000) vacancies:int(0,2)", parents="building", machine="listing", core=True),
        T("leases|tenancies", "lease|tenancy", "lea", "record", "start_date:future_date months:int(3,36) deposit:money(200,8000) created_at:created", parents="tenant unit", machine="contract", core=True),
        T("maintenance_requests|repair_tickets", "maintenance request|repair ticket", "mnt", "record", "issue:text(repair) priority:enum(low,normal,urgent) opened_at:created", parents="unit tenant", machine="ticket"),
        T("contractors", "contractor", "ctr", "provider", "company_name:company trade:enum(plumbing,electrical,hvac,carpentry,cleaning) hourly_rate:money(25,160)"),
        T("rent_invoices", "rent invoice", "rin", "invoice", "amount_due:amount(400,6000) issued_on:past_date period:enum(jan,feb,mar,apr,may,jun,jul,aug,sep,oct,nov,dec)", parents="tenant", machine="invoice"),
        T("rent_payments", "rent payment", "rpy", "payment", "amount:money(100,6000) method:enum(transfer,card,check) paid_at:created", parents="rent_invoice"),
        T("viewing_slots|open_houses", "viewing slot|open house", "vsl", "resource", "starts_at:future_dt places_left:capacity(1,15)", parents="unit", machine="resource"),
        T("viewings", "viewing", "vwg", "booking", "quantity:int(1,2) created_at:created", parents="tenant viewing_slot", machine="booking"),
    )),
    Sector("agriculture", ("Farm Cooperative", "Agronomy Service", "Greenhouse Network", "Orchard Collective"),
           "growers manage fields and crops, log sensor readings, buy inputs and sell harvests",
           ("agriculture", "farming", "crops", "environment"), (
        T("growers|farmers", "grower|farmer", "grw", "person", _PERSON + " certified_organic:bool", machine="account", core=True),
        T("fields|plots", "field|plot", "fld", "place", "name:title(field) hectares:number(0.5,400) soil_type:enum(clay,loam,sand,silt,peat)", parents="grower", core=True),
        T("crop_plantings|plantings", "crop planting|planting", "cpl", "record", "crop:enum(wheat,maize,soy,barley,potato,grape,apple) sown_on:past_date expected_yield_t:number(1,900)", parents="field", machine="crop", core=True),
        T("sensor_readings|soil_readings", "sensor reading|soil reading", "sen", "record", "metric:enum(moisture,ph,nitrogen,temperature) value:number(0,100) recorded_at:past_dt", parents="field", core=True),
        T("input_supplies|farm_inputs", "input supply|farm input", "inp", "item", "name:title(input) kind:enum(seed,fertilizer,pesticide,feed) unit_price:money(3,300) stock_units:stock(0,400)"),
        T("supply_orders", "supply order", "sor", "invoice", "amount_due:amount(20,9000) created_at:created", parents="grower", machine="invoice"),
        T("supply_payments", "supply payment", "spy", "payment", "amount:money(10,9000) method:enum(transfer,credit_line,card) paid_at:created", parents="supply_order"),
        T("harvest_lots|harvest_batches", "harvest lot|harvest batch", "hvl", "record", "tonnes:number(0.5,300) grade:enum(a,b,c) harvested_on:past_date", parents="crop_planting", machine="lot"),
        T("equipment_slots|machinery_slots", "equipment slot|machinery slot", "eqs", "resource", "machine:enum(tractor,harvester,sprayer,seeder) starts_at:future_dt machines_left:capacity(1,3)", machine="resource"),
        T("equipment_bookings", "equipment booking", "eqb", "booking", "quantity:int(1,1) created_at:created", parents="grower equipment_slot", machine="booking"),
    )),
    Sector("media", ("Streaming Catalog", "Entertainment Guide", "Podcast Network", "Film Club"),
           "members browse titles and episodes, keep watchlists, book screenings and pay subscriptions",
           ("entertainment", "media", "streaming", "screenings"), (
        T("members|subscribers", "member|subscriber", "mem", "person", _PERSON + " plan:enum(free,standard,premium)", machine="account", core=True),
        T("titles|shows", "title|show", "ttl", "record", "name:title(show) genre:enum(drama,comedy,documentary,thriller,animation,sci_fi) release_year:int(1970,2026) rating?:rating", machine="listing", core=True),
        T("episodes", "episode", "epi", "record", "name:title(episode) season:int(1,8) runtime_minutes:int(18,70)", parents="title", core=True),
        T("watchlist_entries|watchlist_items", "watchlist entry|watchlist item", "wle", "record", "added_at:created priority:enum(low,normal,high)", parents="member title"),
        T("screenings|premieres", "screening|premiere", "scr", "resource", "starts_at:future_dt seats_left:capacity(10,120) venue:title(venue)", parents="title", machine="resource", core=True),
        T("screening_tickets|seat_reservations", "screening ticket|seat reservation", "stk", "booking", "quantity:int(1,4) created_at:created", parents="member screening", machine="booking"),
        T("subscription_invoices", "subscription invoice", "sbi", "invoice", "amount_due:amount(5,40) issued_on:past_date", parents="member", machine="invoice"),
        T("subscription_payments", "subscription payment", "sbp", "payment", "amount:money(5,40) method:enum(card,wallet,gift_card) paid_at:created", parents="subscription_invoice"),
        T("title_reviews|critiques", "title review|critique", "trv", "record", "stars:rating comment:text(review) posted_at:created", parents="title member"),
        T("merch_items", "merch item", "mer", "item", "name:title(merch) price:money(5,90) stock:stock(0,300)", parents="title"),
    )),
    Sector("recruiting", ("Job Board", "Talent Agency", "Hiring Platform", "Career Center"),
           "candidates apply to job postings from employers, get interview slots and offers",
           ("job seeking", "recruiting", "applications", "interviews"), (
        T("candidates|job_seekers", "candidate|job seeker", "cnd", "person", _PERSON + " years_experience:int(0,30) desired_salary:money(20000,200000)", machine="account", core=True),
        T("employers|companies", "employer|company", "emp", "provider", "name:company industry:enum(tech,health,finance,retail,energy,public) size:enum(small,medium,large)", core=True),
        T("job_postings|vacancies", "job posting|vacancy", "job", "record", "title:title(job) location:city salary_max:money(25000,250000) remote:bool posted_on:past_date", parents="employer", machine="listing", core=True),
        T("applications", "application", "app", "record", "cover_letter:text(cover) applied_at:created", parents="candidate job_posting", machine="application", core=True),
        T("interview_slots", "interview slot", "ivs", "resource", "starts_at:future_dt places_left:capacity(1,3) format:enum(phone,video,onsite)", parents="job_posting", machine="resource"),
        T("interviews", "interview", "ivw", "booking", "quantity:int(1,1) created_at:created", parents="candidate interview_slot", machine="booking"),
        T("recruiters", "recruiter", "rcr", "provider", "full_name:person desk:enum(tech,sales,ops,exec)", parents="employer"),
        T("placement_invoices", "placement invoice", "pli", "invoice", "amount_due:amount(500,20000) issued_on:past_date", parents="employer", machine="invoice"),
        T("placement_payments", "placement payment", "plp", "payment", "amount:money(100,20000) method:enum(transfer,card) paid_at:created", parents="placement_invoice"),
        T("skill_assessments", "skill assessment", "ska", "record", "skill:enum(python,sql,design,sales,writing,leadership) score:number(0,100) taken_on:past_date", parents="candidate"),
    )),
    Sector("events", ("Wedding Planner", "Event Studio", "Conference Organizer", "Festival Office"),
           "clients plan events with vendors, manage guests and sessions, and pay vendor invoices",
           ("wedding planning", "events", "vendors", "guests"), (
        T("clients|couples", "client|couple", "evc", "person", _PERSON + " budget:money(2000,90000)", core=True),
        T("events|celebrations", "event|celebration", "evt", "record", "name:title(event) event_date:future_date guest_limit:int(20,400) style?:enum(classic,rustic,modern,beach,garden)", parents="client venue", machine="event", core=True),
        T("venues", "venue", "ven", "place", "name:title(venue) city:city capacity_people:int(30,800) price_per_day:money(300,20000)", machine="listing", core=True),
        T("vendors|suppliers", "vendor|supplier", "vnd", "provider", "company_name:company service:enum(catering,flowers,music,photography,decor,transport) rating?:rating", machine="account", core=True),
        T("guests|attendees", "guest|attendee", "egs", "record", "full_name:person rsvp:enum(invited,accepted,declined) dietary?:enum(none,vegetarian,vegan,gluten_free,halal,kosher)", parents="event"),
        T("vendor_contracts|vendor_bookings", "vendor contract|vendor booking", "vct", "record", "fee:money(100,15000) signed_on:past_date notes?:text(contract)", parents="event vendor", machine="contract"),
        T("vendor_invoices", "vendor invoice", "vin", "invoice", "amount_due:amount(100,15000) issued_on:past_date", parents="vendor_contract", machine="invoice"),
        T("vendor_payments", "vendor payment", "vpy", "payment", "amount:money(50,15000) method:enum(card,transfer,check) paid_at:created", parents="vendor_invoice"),
        T("tasting_sessions|workshops", "tasting session|workshop", "tst", "resource", "starts_at:future_dt places_left:capacity(2,20)", parents="vendor", machine="resource"),
        T("session_signups", "session signup", "ssu", "booking", "quantity:int(1,4) created_at:created", parents="client tasting_session", machine="booking"),
        T("checklist_tasks", "checklist task", "ckt", "record", "title:title(checklist) due_on:future_date", parents="event", machine="task"),
    )),
    Sector("pet_care", ("Pet Care Center", "Veterinary Practice", "Dog Daycare", "Pet Hotel"),
           "owners register pets, book grooming and daycare slots, buy supplies and pay bills",
           ("pet care", "veterinary", "grooming", "daycare"), (
        T("owners|pet_parents", "owner|pet parent", "own", "person", _PERSON, core=True),
        T("pets|animals", "pet|animal", "pet", "record", "name:title(pet) species:enum(dog,cat,rabbit,parrot,ferret) breed?:title(breed) birth_date:dob weight_kg:number(0.3,70)", parents="owner", core=True),
        T("caretakers|groomers", "caretaker|groomer", "crt", "provider", "full_name:person skill:enum(grooming,walking,boarding,training) rating?:rating", machine="account", core=True),
        T("care_slots|daycare_slots", "care slot|daycare slot", "csl", "resource", "service:enum(grooming,walking,boarding,training) starts_at:future_dt places_left:capacity(1,10) price:money(15,120)", parents="caretaker", machine="resource", core=True),
        T("care_bookings|appointments", "care booking|appointment", "cbk", "booking", "quantity:int(1,2) created_at:created", parents="pet care_slot", machine="booking", core=True),
        T("vaccinations", "vaccination", "vac", "record", "vaccine:enum(rabies,distemper,parvo,leptospirosis,feline_flu) given_on:past_date next_due:future_date", parents="pet"),
        T("pet_supplies", "pet supply", "psu", "item", "name:title(petsupply) price:money(2,80) stock:stock(0,250)"),
        T("care_invoices", "care invoice", "cin", "invoice", "amount_due:amount(15,1500) issued_on:past_date", parents="owner", machine="invoice"),
        T("care_payments", "care payment", "cpy", "payment", "amount:money(10,1500) method:enum(card,cash,wallet) paid_at:created", parents="care_invoice"),
        T("incident_reports", "incident report", "inc", "record", "summary:text(incident) severity:enum(minor,moderate,serious) reported_at:created", parents="pet", machine="ticket"),
    )),
    Sector("smart_home", ("Smart Home Hub", "Home Automation Service", "Energy Monitor", "Connected Living"),
           "households run devices in rooms, schedule automations, track energy and service tickets",
           ("smart home", "iot", "devices", "energy"), (
        T("households|homes", "household|home", "hh", "person", "name:title(home) owner_name:person email:email city:city", machine="account", core=True),
        T("rooms", "room", "rom", "place", "name:enum(kitchen,living_room,bedroom,office,garage,bathroom) floor:int(0,3)", parents="household", core=True),
        T("devices", "device", "dev", "record", "name:title(device) kind:enum(light,thermostat,lock,camera,plug,speaker) power_watts:number(1,2500) firmware:code", parents="room", machine="switch", core=True),
        T("automations|routines", "automation|routine", "aut", "record", "name:title(routine) trigger:enum(time,motion,door,voice,sunset)", parents="household", machine="switch", core=True),
        T("energy_readings", "energy reading", "enr", "record", "kwh:number(0,50) recorded_at:past_dt", parents="device"),
        T("installer_slots", "installer slot", "ins", "resource", "starts_at:future_dt jobs_left:capacity(1,4)", machine="resource"),
        T("install_bookings", "install booking", "inb", "booking", "quantity:int(1,1) created_at:created", parents="household installer_slot", machine="booking"),
        T("service_tickets", "service ticket", "stk", "record", "issue:text(device) priority:enum(low,normal,urgent) opened_at:created", parents="device", machine="ticket"),
        T("spare_parts", "spare part", "spp", "item", "name:title(part) price:money(1,200) stock:stock(0,150)"),
        T("energy_bills", "energy bill", "ebl", "invoice", "amount_due:amount(20,600) issued_on:past_date", parents="household", machine="invoice"),
        T("energy_bill_payments", "energy bill payment", "ebp", "payment", "amount:money(10,600) method:enum(debit,card,transfer) paid_at:created", parents="energy_bill"),
    )),
    Sector("sports", ("Football Club", "Sports League", "Fitness Studio", "Tennis Academy"),
           "members join teams, book training sessions and fixtures, buy kit and pay dues",
           ("football", "sports", "training", "fixtures"), (
        T("players|athletes", "player|athlete", "ply", "person", _PERSON + " position:enum(goalkeeper,defender,midfielder,forward) shirt_number:int(1,99)", machine="account", core=True),
        T("teams|squads", "team|squad", "tea", "record", "name:title(team) division:enum(u12,u16,u21,senior,veterans) founded:int(1890,2024)", parents="coach", core=True),
        T("coaches|trainers", "coach|trainer", "cch", "provider", "full_name:person badge:enum(uefa_c,uefa_b,uefa_a,pro) years_experience:int(1,40)", core=True),
        T("training_sessions|practices", "training session|practice", "trn", "resource", "starts_at:future_dt spots_left:capacity(6,30) focus:enum(fitness,tactics,set_pieces,recovery)", parents="team", machine="resource", core=True),
        T("session_bookings|attendances", "session booking|attendance", "sbk", "booking", "quantity:int(1,1) created_at:created", parents="player training_session", machine="booking", core=True),
        T("fixtures|matches", "fixture|match", "fix", "record", "opponent:title(team) kickoff:future_dt home:bool goals_for?:int(0,9) goals_against?:int(0,9)", parents="team", machine="match"),
        T("kit_items|merchandise", "kit item|merchandise item", "kit", "item", "name:title(kit) size:enum(xs,s,m,l,xl) price:money(5,120) stock:stock(0,200)"),
        T("dues_invoices|membership_fees", "dues invoice|membership fee", "due", "invoice", "amount_due:amount(20,900) issued_on:past_date", parents="player", machine="invoice"),
        T("dues_payments", "dues payment", "dpy", "payment", "amount:money(10,900) method:enum(card,cash,transfer) paid_at:created", parents="dues_invoice"),
        T("injury_reports", "injury report", "inj", "record", "body_part:enum(knee,ankle,hamstring,shoulder,back) severity:enum(minor,moderate,severe) reported_at:created notes?:text(injury)", parents="player", machine="ticket"),
    )),
    Sector("knowledge", ("Knowledge Base", "Documentation Portal", "Research Wiki", "Team Handbook"),
           "authors write articles in spaces, reviewers approve revisions, readers file feedback",
           ("knowledge management", "documentation", "articles", "reviews"), (
        T("authors|contributors", "author|contributor", "aut", "person", _PERSON + " role:enum(writer,editor,admin)", machine="account", core=True),
        T("spaces|collections", "space|collection", "spc", "place", "name:title(space) visibility:enum(public,internal,private)", core=True),
        T("articles|pages", "article|page", "art", "record", "title:title(article) summary:text(article) word_count:int(100,9000) updated_at:created", parents="space author", machine="listing", core=True),
        T("revisions", "revision", "rvs", "record", "change_note:text(revision) created_at:created", parents="article author", machine="revision", core=True),
        T("tags", "tag", "tag", "record", "label:title(tag) color:enum(red,blue,green,yellow,grey)", parents="space"),
        T("feedback_items|comments", "feedback item|comment", "fbk", "record", "body:text(feedback) helpful:bool created_at:created", parents="article", machine="ticket"),
        T("review_slots|office_hours", "review slot|office hour", "rsl", "resource", "starts_at:future_dt places_left:capacity(1,6)", parents="author", machine="resource"),
        T("review_bookings", "review booking", "rbk", "booking", "quantity:int(1,1) created_at:created", parents="author review_slot", machine="booking"),
        T("license_seats", "license seat", "lic", "item", "product:enum(editor,analytics,export,translation) price:money(5,60) available:int(0,100)"),
    )),
    Sector("project_management", ("Project Office", "Delivery Studio", "Agency Workspace", "Program Board"),
           "teams run projects with tasks and milestones, log time, and bill clients",
           ("project management", "tasks", "time tracking", "billing"), (
        T("team_members|staff", "team member|staff member", "tm", "person", _PERSON + " role:enum(engineer,designer,manager,analyst) weekly_hours:int(10,45)", machine="account", core=True),
        T("client_accounts|customers", "client account|customer", "cac", "provider", "name:company industry:enum(tech,health,finance,retail,public) contact_email:email", core=True),
        T("projects", "project", "prj", "record", "name:title(project) budget:money(5000,500000) starts_on:past_date", parents="client_account", machine="task", core=True),
        T("work_items|tasks", "work item|task", "wi", "record", "title:title(task) estimate_hours:int(1,80) priority:enum(low,normal,high,critical)", parents="project team_member", machine="task", core=True),
        T("milestones", "milestone", "mil", "record", "name:title(milestone) due_on:future_date", parents="project", machine="milestone"),
        T("time_entries|timesheets", "time entry|timesheet entry", "tme", "record", "hours:number(0.5,12) worked_on:past_date note?:text(time)", parents="work_item team_member"),
        T("project_invoices", "project invoice", "pin", "invoice", "amount_due:amount(500,90000) issued_on:past_date", parents="client_account", machine="invoice"),
        T("project_payments", "project payment", "ppy", "payment", "amount:money(100,90000) method:enum(transfer,card,check) paid_at:created", parents="project_invoice"),
        T("workshop_slots|sprint_reviews", "workshop slot|sprint review", "wks", "resource", "starts_at:future_dt seats_left:capacity(2,12)", parents="project", machine="resource"),
        T("workshop_seats", "workshop seat", "wst", "booking", "quantity:int(1,2) created_at:created", parents="team_member workshop_slot", machine="booking"),
    )),
    Sector("messaging", ("Social Messaging App", "Community Forum", "Email Suite", "Team Chat"),
           "users post in channels, send messages, report abuse and subscribe to paid tiers",
           ("social media", "messaging", "email", "moderation"), (
        T("users|account_holders", "user|account holder", "usr", "person", _PERSON + " handle:code", machine="account", core=True),
        T("channels|groups", "channel|group", "chn", "record", "name:title(channel) topic:enum(general,random,news,support,events,dev) is_private:bool", parents="user", machine="listing", core=True),
        T("messages|posts", "message|post", "msg", "record", "body:text(message) sent_at:created pinned:bool", parents="channel user", core=True),
        T("mail_folders", "mail folder", "mfd", "record", "name:enum(inbox,archive,receipts,travel,work,family) color?:enum(red,blue,green)", parents="user"),
        T("abuse_reports|flags", "abuse report|flag", "abr", "record", "reason:enum(spam,harassment,scam,off_topic,other) details:text(abuse) filed_at:created", parents="message user", machine="ticket", core=True),
        T("live_rooms|audio_rooms", "live room|audio room", "lrm", "resource", "title:title(room) starts_at:future_dt seats_left:capacity(5,200)", parents="channel", machine="resource"),
        T("room_seats", "room seat", "rse", "booking", "quantity:int(1,1) created_at:created", parents="user live_room", machine="booking"),
        T("subscription_bills", "subscription bill", "sbl", "invoice", "amount_due:amount(3,30) issued_on:past_date", parents="user", machine="invoice"),
        T("subscription_charges", "subscription charge", "sch", "payment", "amount:money(3,30) method:enum(card,wallet,app_store) paid_at:created", parents="subscription_bill"),
        T("sticker_packs", "sticker pack", "stp", "item", "name:title(sticker) price:money(1,10)"),
    )),
)

DOMAIN_PLACES = ("Ashford", "Brookmere", "Calderon", "Dunmore", "Elmstead", "Fairhaven", "Glenrock", "Halberd",
                 "Ironvale", "Juniper", "Kestrel", "Larkspur", "Marlow", "Northwick", "Oakridge", "Pembrook",
                 "Queensbay", "Ravenhill", "Stonebridge", "Thornbury", "Upton", "Valewood", "Westmarch",
                 "Yarrow", "Zephyr", "Amberley", "Bellmont", "Corrin", "Driftwood", "Easterly")
DOMAIN_ADJ = ("", "Greater", "United", "Metro", "Regional", "Coastal", "Highland", "Riverside", "Central", "New")


def archetype_count() -> int:
    return sum(len(s.tables) for s in SECTORS)
