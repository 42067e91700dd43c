"""Framework integrations under the import path of llm-localfirst 0.1.

``llm_localfirst.integrations.pydantic_ai`` is where 0.1 documented
``attach_worker``; it re-exports :mod:`llm_localfirst.adapters.pydantic_ai`, so code
written for 0.1 keeps working. New code may import from either. Importing this
package imports no framework.
"""
