"""The example app's cron (Convex's crons.ts): every 10 minutes, delete
messages older than 30 days (a bounded batch per run: functions/maintenance.py)."""

from runtime import cron_jobs

crons = cron_jobs()
crons.interval("trim old messages", {"minutes": 10}, "maintenance:trim_messages")
