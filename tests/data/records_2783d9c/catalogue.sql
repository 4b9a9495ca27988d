BEGIN TRANSACTION;
CREATE TABLE batches (
    watchlist_id TEXT NOT NULL REFERENCES watchlists (watchlist_id),
    batch INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'committed', 'failed')),
    entries INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (watchlist_id, batch)
);
INSERT INTO "batches" VALUES('west_end',1,'committed',3,1760000020);
INSERT INTO "batches" VALUES('west_end',2,'failed',0,1760000030);
INSERT INTO "batches" VALUES('west_end',3,'committed',2,1760000040);
INSERT INTO "batches" VALUES('west_end',4,'pending',0,1760000050);
INSERT INTO "batches" VALUES('missing',1,'committed',1,1760000080);
CREATE TABLE calibrations (
    watchlist_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    threshold REAL NOT NULL,
    target_fpir REAL NOT NULL,
    list_size INTEGER NOT NULL,
    per_pair_rate REAL NOT NULL,
    expected_tpir REAL NOT NULL,
    fusion TEXT NOT NULL,
    cohort_digest TEXT NOT NULL,
    PRIMARY KEY (watchlist_id, number),
    FOREIGN KEY (watchlist_id, number) REFERENCES versions (watchlist_id, number)
);
INSERT INTO "calibrations" VALUES('west_end',2,0.612,0.001,5,0.0002,0.94,'arcface+faceres','cohort-0123');
CREATE TABLE enrolled_photos (
    watchlist_id TEXT NOT NULL REFERENCES watchlists (watchlist_id),
    person_id TEXT NOT NULL,
    photo_sha256 TEXT NOT NULL,
    face_index INTEGER NOT NULL,
    entry_id TEXT NOT NULL,
    batch INTEGER NOT NULL,
    PRIMARY KEY (watchlist_id, person_id, photo_sha256, face_index)
);
INSERT INTO "enrolled_photos" VALUES('west_end','P1','67c3e9b5daff95faec58b02b15608ce36dc59c42e6762a07d95b89f93208cabe',0,'e-P1',1);
INSERT INTO "enrolled_photos" VALUES('west_end','P2','67c3e9b5daff95faec58b02b15608ce36dc59c42e6762a07d95b89f93208cabe',0,'e-P2',1);
INSERT INTO "enrolled_photos" VALUES('west_end','P3','67c3e9b5daff95faec58b02b15608ce36dc59c42e6762a07d95b89f93208cabe',0,'e-P3',1);
CREATE TABLE versions (
    watchlist_id TEXT NOT NULL REFERENCES watchlists (watchlist_id),
    number INTEGER NOT NULL,
    max_batch INTEGER NOT NULL,
    excluded_batches TEXT NOT NULL,
    entry_count INTEGER NOT NULL,
    digest TEXT NOT NULL,
    frozen_at INTEGER NOT NULL,
    PRIMARY KEY (watchlist_id, number)
);
INSERT INTO "versions" VALUES('west_end',1,3,'[2]',5,'digest-west-end-1',1760000060);
INSERT INTO "versions" VALUES('west_end',2,3,'[2]',5,'digest-west-end-1',1760000070);
INSERT INTO "versions" VALUES('missing',1,1,'[]',1,'digest-missing-1',1760000090);
CREATE TABLE watchlists (
    watchlist_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    reason TEXT NOT NULL,
    authorised_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
INSERT INTO "watchlists" VALUES('west_end','West End','Wanted for robbery, warrant 17/2025','Supt. A Rahman',1760000000,1767776000);
INSERT INTO "watchlists" VALUES('missing','Missing people','Vulnerable missing persons','Ch Insp. B Ode',1760000010,4102444800);
COMMIT;
