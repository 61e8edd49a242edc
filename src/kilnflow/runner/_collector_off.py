"""Imported by a ParallelRunner's fork server before its libraries: it turns the collector off.

Importing pandas and scikit-learn creates a few hundred thousand objects, and
the cyclic garbage collector scans them again and again as they arrive,
which costs about a tenth of the import's time and frees almost nothing.
The server never turns it back on: it only forks workers, and objects it
leaves untouched keep the memory pages its workers share with it unwritten.
Each worker freezes what it inherits and turns its collector on again
(``_start_worker`` in :mod:`kilnflow.runner._parallel`), the recipe that
:func:`gc.freeze`'s documentation gives for a process that forks.
"""

import gc

gc.disable()
