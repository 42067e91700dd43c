"""Built-in detectors of sensitive content in prompts.

This package owns the detectors that decide whether a prompt carries personal data
or credentials and so must stay on a local model: e-mail addresses, phone numbers,
payment cards, IBANs, national identity numbers and secrets (API keys and tokens,
private-key blocks, JWTs, passwords in assignments, credentials in URLs).

How it works: a handful of regular-expression passes find candidates in one linear
sweep each. Every pass starts with a literal ("@", "%", "_", "-", "eyJ", ":", "=",
"://", ".", "~"), which `re` finds at memchr speed, except the one over digits and
capitals, which starts with a character class and only where a token starts; rare
formats share a sweep with a common one (Telegram tokens the one over ":"). The costly
checks (Luhn, mod-97, phone-number metadata, python-stdnum check digits, JWT
header decoding) run on candidates only. An identifier whose checksum is weak (a
nine-digit BSN passes its 11-proof one time in eleven) counts only in a
distinctive format or next to a label such as "BSN" or "Aadhaar", and a number
right after "order", "invoice" or "tracking" needs its own label.

Modules: `scanner` (the passes and `Scanner`), `emails`, `numbers` (digit runs:
cards and the first ten countries' ids), `national_ids` (the ids of seventeen
more countries), `capitals` (lettered ids, prefixed cloud keys), `ibans`,
`phones`, `secrets` (secrets by their shape), `assignments` (secrets by their
label), `secret_checks` (placeholders, documented examples, token checksums),
`checksums` and `text` (context words, shared helpers).

What it must never do: return, log or store the matched text (a `Finding` carries
only the detector, a kind label and a span), or lower sensitivity: detectors only
add findings, and callers treat an exception raised here as "sensitive". Importing
it or building a `Scanner` compiles nothing and imports neither ``phonenumbers``
nor ``stdnum``. That work is done when a text first needs it: a pass's pattern is
compiled the first time a text holds its needle, ``phonenumbers`` is imported for
the first phone candidate, a region's patterns are compiled the first time a
number is tried there, and a python-stdnum module the first time its check runs.
"""

from __future__ import annotations

from .finding import DETECTORS, Finding
from .scanner import Scanner, scanner_for

__all__ = ["DETECTORS", "Finding", "Scanner", "scanner_for"]
