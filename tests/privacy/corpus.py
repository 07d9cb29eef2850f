"""A small corpus with planted personal data, for the privacy tests.

Each planted value is a constant; :data:`PLANTED` maps every default personal-data type
(:data:`extractors.privacy.DIRECT_IDENTIFIERS`) to the values of that type and the
document that holds them. The documents read like ordinary office text (memos, e-mails,
reports). :data:`CLEAN` holds no personal data but many numbers that look a little like
it (years, amounts, ISBNs, populations, dates, percentages, version numbers).

The values are made up; the card, IBAN and NHS numbers carry valid check digits and the
SSN is not one of the well-known published examples (Presidio rejects those).
"""

from __future__ import annotations

from engine.readers import SourceDocument

__all__ = [
    "ACCOUNT",
    "ADDRESS",
    "CARD",
    "CLEAN",
    "DOCUMENTS",
    "EMAIL",
    "EMAIL_2",
    "IBAN",
    "IP",
    "ITIN",
    "NHS",
    "NINO",
    "PASSPORT",
    "PHONE",
    "PLANTED",
    "SSN",
    "planted_in",
]

EMAIL = "marta.keller@northwind-logistics.com"
EMAIL_2 = "j.okafor@harbourline.co.uk"
PHONE = "(415) 555-0132"
CARD = "4539 1488 0343 6467"
IBAN = "DE89 3704 0044 0532 0130 00"
ACCOUNT = "71650293847561"
SSN = "536-22-8146"
ITIN = "912-78-3456"
PASSPORT = "546812937"
NHS = "485 777 3457"
NINO = "JG 10 37 42 B"
IP = "203.0.113.42"
ADDRESS = "1187 Harbor View Drive, Oakland, CA 94607"

HR_MEMO = SourceDocument(
    source="hr-memo",
    origin="tests/privacy/corpus.py",
    title="Onboarding memo",
    text=(
        "To: People Operations\n"
        "Subject: Onboarding for Marta Keller\n\n"
        "Marta Keller joins the Oakland office of Northwind Logistics on Monday as a freight "
        f"planner. Please send the welcome pack to her home address, {ADDRESS}. "
        f"Her work e-mail will be {EMAIL} once IT has set up the account, and until then "
        f"she can be called on {PHONE}. Payroll has her Social Security number as {SSN} "
        f"and will pay her salary into her checking account number {ACCOUNT} at the "
        "Bank of the West.\n\n"
        "Her manager, Daniel Ortiz, will meet her at reception at nine."
    ),
)

FINANCE_EMAIL = SourceDocument(
    source="finance-email",
    origin="tests/privacy/corpus.py",
    title="Refund for the Hamburg conference",
    text=(
        "Hi Joy,\n\n"
        "Thanks for sending the receipts from the Hamburg logistics conference. Finance "
        "refunded the registration fee to the corporate card ending the trip, card number "
        f"{CARD}, and the hotel deposit went back to the supplier's German account, IBAN "
        f"{IBAN}. Jonas Weber at the supplier confirmed both by phone on Thursday.\n\n"
        f"If anything is missing, write to me at {EMAIL_2}.\n\n"
        "Best,\nJoy Okafor\nHarbourline Shipping"
    ),
)

TRAVEL_REPORT = SourceDocument(
    source="travel-report",
    origin="tests/privacy/corpus.py",
    title="Travel desk report",
    text=(
        "Travel desk report, third quarter.\n\n"
        "Priya Shah flew to London for the client workshop with Harbourline. Her US passport "
        f"number {PASSPORT} was checked at booking, and her tax filing for the trip used "
        f"her ITIN {ITIN} because she is not eligible for a Social Security number. While in "
        f"London she saw a doctor; the clinic recorded her NHS number as {NHS} and her "
        f"National Insurance number as {NINO} from her earlier job in Leeds.\n\n"
        f"The VPN log shows her laptop connecting from {IP} during the workshop."
    ),
)

CLEAN = SourceDocument(
    source="annual-report",
    origin="tests/privacy/corpus.py",
    title="Annual report summary",
    text=(
        "Annual report summary.\n\n"
        "Northwind Logistics was founded in 1998 in Oakland and now runs 14 depots. Revenue "
        "for 2023 was $48,250,000, up 6.5 percent from 2022, and the board approved a "
        "dividend of $1.20 per share on 12 March 2024. The Oakland depot served a region "
        "with a population of 1,284,000 people and handled 325,400 parcels in December.\n\n"
        "The company history, Northwind at Twenty-Five (ISBN 978-0-306-40615-7), was "
        "published on 2023-09-14 and sold 12,500 copies. Route 66 deliveries rose from "
        "3,100 to 4,275 between 1 January and 30 June. The fleet software moved to "
        "version 4.2.1 in Q3, and fuel costs fell 2.75% to 0.84 dollars per mile."
    ),
)

DOCUMENTS = (HR_MEMO, FINANCE_EMAIL, TRAVEL_REPORT, CLEAN)

#: Every default type, with the values of that type planted and the source holding them.
PLANTED: dict[str, tuple[tuple[str, str], ...]] = {
    "EMAIL_ADDRESS": ((EMAIL, HR_MEMO.source), (EMAIL_2, FINANCE_EMAIL.source)),
    "PHONE_NUMBER": ((PHONE, HR_MEMO.source),),
    "CREDIT_CARD": ((CARD, FINANCE_EMAIL.source),),
    "IBAN_CODE": ((IBAN, FINANCE_EMAIL.source),),
    "US_BANK_NUMBER": ((ACCOUNT, HR_MEMO.source),),
    "US_SSN": ((SSN, HR_MEMO.source),),
    "US_ITIN": ((ITIN, TRAVEL_REPORT.source),),
    "US_PASSPORT": ((PASSPORT, TRAVEL_REPORT.source),),
    "UK_NHS": ((NHS, TRAVEL_REPORT.source),),
    "UK_NINO": ((NINO, TRAVEL_REPORT.source),),
    "IP_ADDRESS": ((IP, TRAVEL_REPORT.source),),
    "STREET_ADDRESS": ((ADDRESS, HR_MEMO.source),),
}


def planted_in(source: str) -> list[tuple[str, str]]:
    """The (value, type) pairs planted in one document."""
    return [
        (value, pii_type)
        for pii_type, found in PLANTED.items()
        for value, where in found
        if where == source
    ]
