"""Cost accounting: prices, the usage ledger, budgets and the usage report (docs/operations.md).

``prices.py`` turns tokens into money, ``ledger.py`` stores one ``UsageRecord`` per metered LLM
use (with each key's and tenant's running spend) on the state port, ``budgets.py`` decides whether
a key or tenant may still spend, ``report.py`` sums records into groups, ``service.py`` serves
``switchboard.v1.UsageService`` and ``client.py`` calls it.
"""
