"""The loop thread and what it decides: commands, timetable and heap, firing, policy, recovery."""
