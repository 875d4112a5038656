"""APScheduler 3.x AsyncIOScheduler: registers the job bodies of services.jobs with fixed ids and intervals."""
