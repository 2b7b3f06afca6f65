"""Shadow verification of L2 hits: the tally of audited hits, the precision estimate, the error budget (cache side).

The request side (which hits are audited, the upstream call, the background queue) is `proxy/shadow_audit.py`.
"""
