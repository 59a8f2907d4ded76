"""Imported last by the benchmark's forkserver (see impls.FREEZE_MODULE): freezes the objects of the preloaded
modules so that the garbage collector of each forked worker does not walk them (fast gc.collect(), fewer
copy-on-write page copies)."""

import gc

gc.collect()
gc.freeze()
