"""The routing policy: a YAML file in version control, validated, and a pure ``decide``.

Modules: :mod:`.schema` (the models and compiled rules), :mod:`.loading` (YAML and
data to a :class:`Policy`, with precise errors naming the file, rule and field) and
:mod:`.decide` (a request plus destination health to a
:class:`~llm_localfirst.request.Decision`, with no I/O). The privacy pin is applied
after rule matching and no rule can undo it.
"""

from __future__ import annotations

from .decide import Assessment, decide, declared_reasons
from .loading import load_policy, parse_policy, policy_from_data
from .schema import ALL_DETECTORS, MAX_POLICY_BYTES, Arm, Policy, Rule, SensitivityPolicy, When

__all__ = [
    "ALL_DETECTORS",
    "MAX_POLICY_BYTES",
    "Arm",
    "Assessment",
    "Policy",
    "Rule",
    "SensitivityPolicy",
    "When",
    "decide",
    "declared_reasons",
    "load_policy",
    "parse_policy",
    "policy_from_data",
]
