"""The timing engine: it imports no other cronwell package, no web framework, no driver.

- `engine.interfaces`: the contracts it depends on (triggers, the store, the runner).
- `engine.model`, `engine.records`, `engine.errors`, `engine.ids`, `engine.clock`: what it
  talks in (and how execution records are built).
- `engine.scheduler.Scheduler`: the one object a service drives it through.
- `engine.scheduling`: the loop thread and everything it decides (commands, timetable,
  heap, firing, policy, recovery).
- `engine.running`: what happens to a fire after the loop (worker pool, executor,
  recorder, store retries).
- `engine.triggers`: date, interval and cron triggers.
- `engine.events`: the event bus listeners hear the engine through.
"""
