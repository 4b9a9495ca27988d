"""Social-media posts for retrospective search: ingest with provenance (JSON lines, Mastodon archives), text
triage that flags posts for an officer, following a growing export (`lfr social watch`), leads from flagged posts'
faces, and the posts' records under the social retention rule. The faces themselves live in the gallery
(`cluster.gallery.social`)."""
