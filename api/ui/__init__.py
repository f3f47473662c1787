"""The web dashboard at /ui/: server-rendered pages (Jinja2) over the same owner-checked
store reads and serialisers the JSON API uses, with a little JavaScript that acts
through the JSON endpoints themselves.

- `routes`: jobs, a job, charts, the job forms, an execution, `/ui/static/` files;
- `people`: users with their keys, servers; `system`: nodes, the audit trail;
- `sign_in`: signing in with an API key and out; `session`: sessions and CSRF tokens,
  and the middleware that lets a page's JSON requests act for its session;
- `viewer`: who is looking, and the decorator every page wears;
- `reads`: what a page shows, gathered from the store as the API gathers it;
- `charts`: server-rendered SVG charts; `rows`: the jobs table's rows; `words`: durations;
- `render`: the Jinja2 environment; `templates/` and `static/` ship with the package;
- `paths`: which paths are the dashboard's (a leaf, read by the key middleware).

Nothing here is imported by this `__init__`, so `api.ui.paths` stays a leaf.
"""
