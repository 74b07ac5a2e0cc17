"""How long a test waits for an event before it calls the bot broken.

CI runs the whole suite once, two tests at a time on a 2-core machine, next to other work: there a
step that takes 0.2 s alone (a subprocess bot importing its libraries, a migration, a first draft)
can take 20 s. A wait's ceiling only matters when the event never comes, so it is generous: a
passing test never waits longer for it, a broken one fails a minute later instead of a flaky one
failing today. The product's own timing promises (SIGTERM: out within 8 s) stay asserted where
they are tested, measured from the signal; speed is measured by the benchmarks in bench/.
"""

# The least time any wait for an event in the fakes and harness gives it (seconds).
WAIT_CEILING = 60.0

# A subprocess bot's start: Python, PTB, SQLAlchemy and its migrations child, two tests at a time.
START_CEILING = 120.0
