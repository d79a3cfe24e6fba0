#!/usr/bin/env python3
"""Deterministic seed data for the local stack (no downloads).

Two jobs:

* ``files OUTDIR``: the customers CSV and three small, valid PDF documents
  that the stack places on its FTP, SFTP and HTTP servers;
* ``mongo``: the ``retail.customer_transactions`` collection, shaped like the
  public "Online Retail" data set (541,909 rows, Dec 2010 - Dec 2011) with its
  mess: ~25 % of rows without a CustomerID (field missing, or null), cancelled
  invoices ("C536379") with negative quantities, exact duplicate rows, stock
  codes whose description and price change over time, rows without a
  Description.

Everything comes from one fixed RNG seed, so two runs produce the same bytes
(the same documents, including their ObjectIds). Only ``mongo`` needs pymongo.

Why null and not NaN: in the public data the missing CustomerIDs are NaN
(a pandas artefact), but FerretDB 1.24 refuses NaN doubles on the wire
("NaN is not supported"), so the half of the anonymous invoices that keep the
field carry null instead; the other half lack the field entirely.
"""

import argparse
import csv
import datetime as dt
import io
import math
import os
import random
import struct
import sys
import time

SEED = 20101201
FULL_SIZE = 541_909
SMALL_SIZE = 5_000
# Bump when the generator changes: a stored collection with an older version
# is re-seeded even if its size matches.
GENERATOR_VERSION = 1

COUNTRIES = [  # (country, weight): the real data is ~91 % United Kingdom
    ("United Kingdom", 9100), ("Germany", 175), ("France", 158), ("EIRE", 152),
    ("Spain", 47), ("Netherlands", 44), ("Belgium", 38), ("Switzerland", 37),
    ("Portugal", 28), ("Australia", 23), ("Norway", 20), ("Italy", 15),
    ("Channel Islands", 14), ("Finland", 13), ("Cyprus", 11), ("Sweden", 9),
    ("Austria", 7), ("Denmark", 7), ("Japan", 7), ("Poland", 6), ("USA", 5),
    ("Israel", 5), ("Unspecified", 4), ("Singapore", 4), ("Iceland", 3),
    ("Canada", 3), ("Greece", 3), ("Malta", 2), ("United Arab Emirates", 1),
    ("European Community", 1), ("RSA", 1), ("Lebanon", 1), ("Lithuania", 1),
    ("Brazil", 1), ("Czech Republic", 1), ("Bahrain", 1), ("Saudi Arabia", 1),
]

COLOURS = ["WHITE", "RED", "PINK", "BLUE", "GREEN", "IVORY", "BLACK", "CREAM",
           "SILVER", "GOLD", "PURPLE", "ORANGE", "YELLOW", "VINTAGE", "RETRO"]
STYLES = ["HANGING", "HEART", "METAL", "GLASS", "WOODEN", "FELTCRAFT", "POLKADOT",
          "REGENCY", "JUMBO", "SMALL", "LARGE", "PAPER", "CERAMIC", "FLORAL",
          "SPOTTY", "CHRISTMAS", "PARTY", "GARDEN", "KITCHEN", "LOVE"]
ITEMS = ["T-LIGHT HOLDER", "LANTERN", "CUSHION COVER", "TEA CUP AND SAUCER",
         "BAG", "LUNCH BOX", "CAKE STAND", "PHOTO FRAME", "BUNTING", "SIGN",
         "CANDLE", "MUG", "BOWL", "CLOCK", "DOORSTOP", "NAPKINS", "WRAP",
         "COAT HANGER", "HOT WATER BOTTLE", "SPOON SET", "JAR", "TRAY",
         "NOTEBOOK", "PURSE", "DOORMAT", "STORAGE TIN", "BIRD ORNAMENT"]
SPECIAL_CODES = [  # the real data's non-product codes
    ("POST", "POSTAGE", 18.0), ("D", "Discount", 10.0), ("M", "Manual", 2.5),
    ("C2", "CARRIAGE", 50.0), ("DOT", "DOTCOM POSTAGE", 60.0),
    ("BANK CHARGES", "Bank Charges", 15.0), ("AMAZONFEE", "AMAZON FEE", 100.0),
    ("CRUK", "CRUK Commission", 10.0),
]
FIRST_NAMES = ["Olivia", "Jack", "Amelia", "Harry", "Isla", "Oliver", "Ava",
               "Charlie", "Emily", "George", "Sophie", "Jacob", "Lily", "Noah",
               "Grace", "Alfie", "Mia", "Thomas", "Chloe", "Oscar", "Anna",
               "Lukas", "Marie", "Pierre", "Sean", "Aoife", "Javier", "Sanne"]
LAST_NAMES = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson",
              "Johnson", "Davies", "Robinson", "Wright", "Thompson", "Evans",
              "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson",
              "Clarke", "Muller", "Dubois", "Murphy", "Garcia", "de Vries"]

START = dt.datetime(2010, 12, 1, 8, 26)
END = dt.datetime(2011, 12, 9, 12, 50)


def invoice_date(t):
    """The real data's format: M/D/YYYY H:MM (no zero padding of M, D, H)."""
    return f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}"


class World:
    """Customers and the product catalogue, derived from the seed."""

    def __init__(self, rng):
        self.rng = rng
        countries, weights = zip(*COUNTRIES)
        # ~4,372 customers as in the real data; IDs 12346..18287.
        ids = rng.sample(range(12346, 18288), 4372)
        ids.sort()
        self.customers = []
        for cid in ids:
            country = rng.choices(countries, weights)[0]
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            self.customers.append({
                "CustomerID": cid,
                "Name": f"{first} {last}",
                "Email": f"{first}.{last}.{cid}@example.com".lower().replace(" ", ""),
                "Country": country,
            })
        # ~4,070 stock codes. A product has a timeline of (from, description,
        # price) versions: about a third change description and/or price.
        self.products = []
        codes = set()
        while len(codes) < 4062:
            code = str(rng.randint(10002, 90214))
            if rng.random() < 0.22:
                code += rng.choice("ABCDEFGHLMNPS")
            codes.add(code)
        span = (END - START).total_seconds()
        for code in sorted(codes):
            desc = f"{rng.choice(COLOURS)} {rng.choice(STYLES)} {rng.choice(ITEMS)}"
            price = round(rng.choice([0.29, 0.39, 0.42, 0.55, 0.65, 0.85, 1.25, 1.45,
                                      1.65, 1.95, 2.1, 2.55, 2.95, 3.39, 3.75, 4.25,
                                      4.95, 5.95, 7.95, 8.5, 12.75, 14.95]) *
                          rng.choice([1, 1, 1, 1.1, 0.9]), 2)
            versions = [(START, desc, price)]
            if rng.random() < 0.33:
                for _ in range(rng.randint(1, 3)):
                    when = START + dt.timedelta(seconds=rng.random() * span)
                    if rng.random() < 0.5:
                        desc = desc + rng.choice([" ", ", SET OF 3", " DESIGN", " (BOXED)"]).rstrip()
                        if rng.random() < 0.3:
                            desc = desc.replace("WHITE", "IVORY").replace("RED", "SCARLET")
                    if rng.random() < 0.8:
                        price = round(price * rng.choice([1.05, 1.1, 1.2, 0.9, 0.85]), 2)
                    versions.append((when, desc, price))
                versions.sort(key=lambda v: v[0])
            self.products.append((code, versions))
        for code, desc, price in SPECIAL_CODES:
            self.products.append((code, [(START, desc, price)]))
        # Popularity follows a long tail, as in retail baskets.
        self.weights = [1.0 / (i + 1) ** 0.8 for i in range(len(self.products))]
        rng.shuffle(self.weights)
        self.cum = []
        acc = 0.0
        for w in self.weights:
            acc += w
            self.cum.append(acc)

    def pick_product(self):
        return self.rng.choices(self.products, cum_weights=self.cum)[0]

    @staticmethod
    def version_at(versions, when):
        cur = versions[0]
        for v in versions:
            if v[0] <= when:
                cur = v
            else:
                break
        return cur


def generate(size):
    """Yield `size` transaction documents (without _id) in invoice order."""
    rng = random.Random(SEED)
    world = World(rng)
    # Invoice times advance with the row count over the trading hours
    # (07:00-20:00) of every day between START and END, so invoice numbers grow
    # with time and a small seed still covers the whole year.
    first_day = START.replace(hour=0, minute=0)
    days = (END.date() - START.date()).days + 1
    open_minutes = 13 * 60
    total = days * open_minutes
    first = (START.hour - 7) * 60 + START.minute
    last = (days - 1) * open_minutes + (END.hour - 7) * 60 + END.minute
    n = 0
    invoice_no = 536365
    recent = []  # (invoice, customer) pairs that a cancellation can refer to
    while n < size:
        idx = first + int((last - first) * n / size)
        day, minute = divmod(min(idx, total - 1), open_minutes)
        t = first_day + dt.timedelta(days=day, hours=7, minutes=minute)
        cancelled = rng.random() < 0.017 and recent
        if cancelled:
            _, customer = rng.choice(recent)
            inv = f"C{invoice_no}"
        else:
            # ~25 % of rows carry no CustomerID: whole invoices, as in the real data.
            customer = None if rng.random() < 0.249 else rng.choice(world.customers)
            inv = str(invoice_no)
            recent.append((inv, customer))
            if len(recent) > 200:
                recent.pop(0)
        invoice_no += 1
        # Half of the anonymous invoices lost the field on export, half keep it
        # as null (NaN in the public data; see the module docstring).
        missing_mode = rng.random() < 0.5
        lines = min(size - n, max(1, int(rng.expovariate(1.0 / 21))))
        prev = None
        for _ in range(lines):
            if prev is not None and rng.random() < 0.01:
                doc = dict(prev)  # an exact duplicate row
            else:
                code, versions = world.pick_product()
                _, desc, price = World.version_at(versions, t)
                qty = rng.choice([1, 1, 2, 2, 3, 4, 6, 6, 8, 10, 12, 12, 24, 24, 36, 48])
                if rng.random() < 0.002:
                    qty = rng.choice([96, 144, 200, 480, 600, 1200])
                doc = {"InvoiceNo": inv, "StockCode": code}
                if rng.random() < 0.0027:
                    # Damaged/lost stock adjustments: no description, price 0.
                    price = 0.0
                else:
                    doc["Description"] = desc
                doc["Quantity"] = -qty if cancelled else qty
                doc["InvoiceDate"] = invoice_date(t)
                doc["UnitPrice"] = float(price)
                if customer is not None:
                    doc["CustomerID"] = float(customer["CustomerID"])
                elif not missing_mode:
                    doc["CustomerID"] = None
                doc["Country"] = customer["Country"] if customer else "United Kingdom"
            prev = doc
            n += 1
            yield doc, t


def object_id(rng, when, counter):
    from bson import ObjectId
    ts = int(when.replace(tzinfo=dt.timezone.utc).timestamp())
    return ObjectId(struct.pack(">I", ts) + rng.getrandbits(40).to_bytes(5, "big") +
                    (counter & 0xFFFFFF).to_bytes(3, "big"))


def stored_count(db, name):
    """The collection's document count from collStats. FerretDB 1.24 answers
    `count`/estimated_document_count by decoding every document (~50 s for the
    full size); collStats counts rows in SQLite (~1 s)."""
    if name not in db.list_collection_names():
        return 0
    return int(db.command("collStats", name)["count"])


def seed_mongo(args):
    import pymongo
    size = {"full": FULL_SIZE, "small": SMALL_SIZE}.get(args.size)
    size = size if size is not None else int(args.size)
    client = pymongo.MongoClient(args.uri, serverSelectionTimeoutMS=10000)
    db = client[args.database]
    meta = db["_tributary_seed"]
    coll = db[args.collection]
    want = {"_id": args.collection, "size": size, "generator": GENERATOR_VERSION, "seed": SEED}
    have = meta.find_one({"_id": args.collection})
    if have and all(have.get(k) == v for k, v in want.items()) and have.get("complete"):
        count = stored_count(db, args.collection)
        if count == size:
            print(f"seed: {args.database}.{args.collection} already has {count} documents", file=sys.stderr)
            return
    print(f"seed: writing {size} documents to {args.database}.{args.collection}", file=sys.stderr)
    started = time.monotonic()
    coll.drop()
    meta.replace_one({"_id": args.collection}, dict(want, complete=False), upsert=True)
    id_rng = random.Random(SEED + 1)
    batch, counter, done = [], 0, 0
    for doc, when in generate(size):
        counter += 1
        doc["_id"] = object_id(id_rng, when, counter)
        batch.append(doc)
        if len(batch) >= args.batch:
            coll.insert_many(batch, ordered=False)
            done += len(batch)
            batch = []
            if args.progress and done % (args.batch * 20) == 0:
                print(f"seed: {done}/{size} ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    if batch:
        coll.insert_many(batch, ordered=False)
    # Indexes the runner's incremental exports will filter and sort on.
    coll.create_index([("InvoiceNo", 1)])
    elapsed = time.monotonic() - started
    meta.update_one({"_id": args.collection}, {"$set": {"complete": True, "seconds": round(elapsed, 1)}})
    count = stored_count(db, args.collection)
    if count != size:
        sys.exit(f"seed: expected {size} documents, found {count}")
    print(f"seed: inserted {size} documents in {elapsed:.1f} s", file=sys.stderr)


# ---- files ----------------------------------------------------------------

def pdf_bytes(title, paragraphs):
    """A minimal but valid PDF 1.4: one page per ~40 lines, Helvetica text,
    a correct xref table and trailer (checked by pdfinfo/pdftotext)."""
    lines = [title, ""]
    for para in paragraphs:
        words, cur = para.split(), ""
        for w in words:
            if len(cur) + len(w) + 1 > 88:
                lines.append(cur)
                cur = w
            else:
                cur = f"{cur} {w}".strip()
        lines.extend([cur, ""])
    pages = [lines[i:i + 44] for i in range(0, len(lines), 44)]

    def esc(s):
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    objects = []  # index 0 -> object 1
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(None)  # pages, filled below
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
    kids = []
    for pno, page in enumerate(pages):
        ops = ["BT", "/F2 14 Tf" if pno == 0 else "/F1 10 Tf", "14 TL", "56 790 Td"]
        for i, line in enumerate(page):
            if pno == 0 and i == 1:
                ops.append("/F1 10 Tf")
            ops.append(f"({esc(line)}) Tj T*")
        ops.append("ET")
        ops.append(f"BT /F1 8 Tf 56 40 Td (Page {pno + 1} of {len(pages)}) Tj ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content_no = len(objects)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                       b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents %d 0 R >>" % content_no)
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    info_no = len(objects) + 1
    objects.append(b"<< /Title (%s) /Producer (tributary hack/lib/seed.py) "
                   b"/CreationDate (D:20111209000000Z) >>" % esc(title).encode("latin-1"))
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, info_no, xref))
    return out.getvalue()


DOCUMENTS = {
    "returns-and-cancellations.pdf": (
        "Procedure: Returns and Cancelled Invoices",
        ["Scope. This procedure applies to every order placed through the online shop and "
         "to wholesale customers invoiced from the warehouse.",
         "Cancellations. A cancelled order is recorded as a new invoice whose number is the "
         "original number prefixed with the letter C, for example C536379. Every line of a "
         "cancellation carries a negative quantity equal to the quantity returned.",
         "Refunds. Refunds are issued within 14 days to the original payment method. Postage "
         "is refunded only when the goods were faulty or not as described.",
         "Damaged stock. Items damaged in the warehouse are written off with a zero unit "
         "price and no description; the stock controller reviews these adjustments weekly.",
         "Reporting. Finance reconciles cancellations against the original invoices at "
         "month end. Any cancellation without a matching original is escalated."] * 2),
    "data-handling-policy.pdf": (
        "Policy: Handling Customer and Transaction Data",
        ["Purpose. Customer identifiers, countries and purchase history are personal data "
         "and are handled according to this policy.",
         "Storage. Raw exports land unchanged in the data lake, partitioned by date and run, "
         "so that every figure in a report can be traced back to the original bytes.",
         "Access. Access to the warehouse is granted per role. Credentials are never shared "
         "by e-mail and are rotated every 90 days.",
         "Retention. Raw transaction exports are kept for seven years; derived tables may be "
         "rebuilt from them at any time.",
         "Quality. Tables published to analysts are checked for missing keys, duplicates and "
         "row counts before each release."]),
    "new-starter-onboarding.pdf": (
        "HR Procedure: Onboarding a New Starter",
        ["Before day one. The hiring manager confirms the start date, orders equipment and "
         "requests accounts for e-mail, the warehouse system and the shared drive.",
         "Day one. The new starter receives the staff handbook, completes the health and "
         "safety induction and meets their buddy.",
         "First week. Training covers the order pipeline, the returns procedure and the data "
         "handling policy. Each completed module is signed off by the trainer.",
         "Probation. Reviews take place after one, three and six months. Objectives are "
         "recorded in the HR system and shared with the new starter."]),
}


def write_files(args):
    out = args.outdir
    os.makedirs(os.path.join(out, "procedures"), exist_ok=True)
    os.makedirs(os.path.join(out, "customers"), exist_ok=True)
    for name, (title, paragraphs) in DOCUMENTS.items():
        with open(os.path.join(out, "procedures", name), "wb") as f:
            f.write(pdf_bytes(title, paragraphs))
    world = World(random.Random(SEED))
    signup_rng = random.Random(SEED + 2)
    with open(os.path.join(out, "customers", "customers.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["CustomerID", "Name", "Email", "Country", "SignupDate"])
        for c in world.customers:
            signup = START - dt.timedelta(days=signup_rng.randint(0, 2000))
            w.writerow([c["CustomerID"], c["Name"], c["Email"], c["Country"], signup.date().isoformat()])


def main():
    p = argparse.ArgumentParser(description="Deterministic seed data for the Tributary local stack.")
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mongo", help="seed the transactions collection")
    m.add_argument("--uri", default=os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27117/"))
    m.add_argument("--database", default="retail")
    m.add_argument("--collection", default="customer_transactions")
    m.add_argument("--size", default="full", help="full (541909), small (5000) or a number")
    m.add_argument("--batch", type=int, default=5000)
    m.add_argument("--progress", action="store_true")
    f = sub.add_parser("files", help="write the CSV and PDF files to OUTDIR")
    f.add_argument("outdir")
    args = p.parse_args()
    {"mongo": seed_mongo, "files": write_files}[args.cmd](args)


if __name__ == "__main__":
    main()
