"""The teaching tools of the lab: the replay runner (``npm run lab``), its console view, the
log generator, the stories and pitfalls the lesson shows, and the exercise checker. They
use the job, the stores and the core; nothing outside this package imports them (but the
shared test harness)."""
