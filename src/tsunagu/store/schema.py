"""The store's schema, as an ordered list of migrations.

A database remembers the version it is at (`schema_version`); opening it runs whatever
migrations it has not seen, each in one transaction. Add a migration at the end; never edit one
that has shipped.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "events, sources and master data",
        [
            # One table for every channel, online and offline. The columns are those queries
            # filter and group on; `raw` keeps the whole message, unknown fields included.
            # Times are naive UTC.
            """CREATE TABLE events (
                message_id   VARCHAR   NOT NULL,
                type         VARCHAR   NOT NULL,
                event        VARCHAR,
                user_id      VARCHAR,
                anonymous_id VARCHAR,
                channel      VARCHAR   NOT NULL,
                store_id     VARCHAR,
                timestamp    TIMESTAMP NOT NULL,
                received_at  TIMESTAMP NOT NULL,
                source       VARCHAR   NOT NULL,
                raw          JSON      NOT NULL
            )""",
            """CREATE TABLE sources (
                source_id  VARCHAR PRIMARY KEY,
                name       VARCHAR NOT NULL UNIQUE,
                key_hash   VARCHAR NOT NULL UNIQUE,
                key_prefix VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                revoked_at TIMESTAMP
            )""",
            """CREATE TABLE stores (
                store_id   VARCHAR PRIMARY KEY,
                name       VARCHAR NOT NULL,
                prefecture VARCHAR,
                city       VARCHAR,
                address    VARCHAR,
                postcode   VARCHAR,
                lat        DOUBLE,
                lon        DOUBLE,
                store_type VARCHAR,
                opened_on  DATE,
                attributes JSON,
                updated_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE products (
                sku             VARCHAR PRIMARY KEY,
                name            VARCHAR NOT NULL,
                category        VARCHAR,
                subcategory     VARCHAR,
                brand           VARCHAR,
                price           BIGINT,
                repeat_purchase BOOLEAN,
                launched_on     DATE,
                attributes      JSON,
                updated_at      TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE members (
                member_id     VARCHAR PRIMARY KEY,
                member_card   VARCHAR,
                name          VARCHAR,
                name_kana     VARCHAR,
                email         VARCHAR,
                phone         VARCHAR,
                line_user_id  VARCHAR,
                birth_date    DATE,
                gender        VARCHAR,
                postcode      VARCHAR,
                prefecture    VARCHAR,
                address       VARCHAR,
                home_store_id VARCHAR,
                registered_at TIMESTAMP,
                email_opt_in  BOOLEAN,
                line_opt_in   BOOLEAN,
                push_opt_in   BOOLEAN,
                dm_opt_in     BOOLEAN,
                attributes    JSON,
                updated_at    TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE inventory (
                store_id   VARCHAR NOT NULL,
                sku        VARCHAR NOT NULL,
                quantity   BIGINT  NOT NULL,
                updated_at TIMESTAMP NOT NULL,
                PRIMARY KEY (store_id, sku)
            )""",
            """CREATE TABLE imports (
                import_id   VARCHAR PRIMARY KEY,
                kind        VARCHAR NOT NULL,
                file        VARCHAR NOT NULL,
                rows_read   BIGINT NOT NULL,
                imported    BIGINT NOT NULL,
                rejected    BIGINT NOT NULL,
                duplicates  BIGINT NOT NULL,
                started_at  TIMESTAMP NOT NULL,
                finished_at TIMESTAMP NOT NULL
            )""",
        ],
    ),
    (
        "API keys",
        [
            # Keys for everything but the collector; only a hash is kept.
            """CREATE TABLE api_keys (
                key_id     VARCHAR PRIMARY KEY,
                name       VARCHAR NOT NULL,
                scope      VARCHAR NOT NULL,
                key_hash   VARCHAR NOT NULL UNIQUE,
                key_prefix VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                revoked_at TIMESTAMP
            )""",
        ],
    ),
    (
        "identifier columns on events",
        [
            # Identifiers besides userId / anonymousId, as sent, so identity resolution reads
            # columns instead of parsing every message's JSON.
            *(
                f"ALTER TABLE events ADD COLUMN {name} VARCHAR"
                for name in (
                    "device_id",
                    "email",
                    "phone",
                    "line_user_id",
                    "member_card",
                    "previous_id",
                )
            ),
            """UPDATE events SET
                device_id = json_extract_string(raw, '$.context.device.id'),
                email = coalesce(json_extract_string(raw, '$.traits.email'),
                                 json_extract_string(raw, '$.context.traits.email')),
                phone = coalesce(json_extract_string(raw, '$.traits.phone'),
                                 json_extract_string(raw, '$.context.traits.phone')),
                line_user_id = coalesce(json_extract_string(raw, '$.traits.line_user_id'),
                                        json_extract_string(raw, '$.context.traits.line_user_id')),
                member_card = coalesce(json_extract_string(raw, '$.traits.member_card'),
                                       json_extract_string(raw, '$.context.traits.member_card')),
                previous_id = json_extract_string(raw, '$.previousId')""",
        ],
    ),
    (
        "identity graph",
        [
            # Every normalised identifier and the profile it belongs to. Written sorted by
            # (type, value), so DuckDB's min/max per block finds one identifier quickly.
            """CREATE TABLE identity_nodes (
                type       VARCHAR NOT NULL,
                value      VARCHAR NOT NULL,
                profile_id VARCHAR NOT NULL,
                first_seen TIMESTAMP
            )""",
            # Links refused (and, outside full builds, merges and splits), with the reason.
            """CREATE TABLE identity_audit (
                recorded_at TIMESTAMP NOT NULL,
                kind        VARCHAR NOT NULL,
                seen_at     TIMESTAMP,
                type        VARCHAR,
                value       VARCHAR,
                other_type  VARCHAR,
                other_value VARCHAR,
                reason      VARCHAR NOT NULL,
                at_build    BOOLEAN NOT NULL
            )""",
            "CREATE TABLE identity_state (key VARCHAR PRIMARY KEY, value VARCHAR)",
        ],
    ),
    (
        "commit stamps on events",
        [
            # When the row was committed; increases with every commit (unlike received_at,
            # which a long import sets at its start), so readers can pick up what is new.
            "ALTER TABLE events ADD COLUMN stored_at TIMESTAMP",
            "UPDATE events SET stored_at = received_at",
        ],
    ),
    (
        "probabilistic matches",
        [
            # Records without a shared identifier (identity match), and the profile each joined.
            """CREATE TABLE identity_matches (
                file              VARCHAR NOT NULL,
                record_id         VARCHAR NOT NULL,
                profile_id        VARCHAR NOT NULL,
                match_probability DOUBLE,
                matched           VARCHAR NOT NULL,
                member_id         VARCHAR,
                matched_at        TIMESTAMP NOT NULL
            )""",
            # Pairs scored between the review and the match threshold, for a person to decide.
            """CREATE TABLE identity_review (
                file              VARCHAR NOT NULL,
                left_id           VARCHAR NOT NULL,
                right_id          VARCHAR NOT NULL,
                match_probability DOUBLE NOT NULL,
                match_weight      DOUBLE NOT NULL,
                found_at          TIMESTAMP NOT NULL
            )""",
        ],
    ),
    (
        "suppression list",
        [
            # Identifiers of erased people, hashed (sha256 of "type:normalised value"), so that
            # re-imported data does not bring them back and the list itself names no one.
            """CREATE TABLE suppressed_identifiers (
                type          VARCHAR NOT NULL,
                value_hash    VARCHAR NOT NULL,
                suppressed_at TIMESTAMP NOT NULL
            )""",
        ],
    ),
    (
        "detached identifiers",
        [
            # Identifiers a person detached (the family tablet): they never link anything.
            """CREATE TABLE identity_detached (
                type        VARCHAR NOT NULL,
                value       VARCHAR NOT NULL,
                reason      VARCHAR NOT NULL,
                detached_at TIMESTAMP NOT NULL
            )""",
        ],
    ),
    (
        "matched records' contacts",
        [
            # A record matched to a member brings its e-mail and phone (normalised) to the
            # member's profile: the graph reads them from here.
            "ALTER TABLE identity_matches ADD COLUMN email VARCHAR",
            "ALTER TABLE identity_matches ADD COLUMN phone VARCHAR",
        ],
    ),
    (
        "precomputed profile traits",
        [
            # One row per profile, recomputed by identity build and update (identity/traits.py),
            # so reading a profile is a point query. Written sorted by profile_id. `traits` and
            # `trait_sources` are JSON objects: trait -> value, trait -> where it came from.
            """CREATE TABLE profile_traits (
                profile_id           VARCHAR   NOT NULL,
                first_seen           TIMESTAMP,
                last_seen            TIMESTAMP,
                events               BIGINT    NOT NULL,
                channels             VARCHAR[] NOT NULL,
                orders_online        BIGINT    NOT NULL,
                spend_online         DOUBLE    NOT NULL,
                orders_store         BIGINT    NOT NULL,
                spend_store          DOUBLE    NOT NULL,
                home_store_id        VARCHAR,
                last_store_visit     TIMESTAMP,
                favourite_categories VARCHAR[] NOT NULL,
                traits               JSON      NOT NULL,
                trait_sources        JSON      NOT NULL,
                computed_at          TIMESTAMP NOT NULL
            )""",
        ],
    ),
    (
        "identifiers on profile traits",
        [
            # The profile's identifiers ({type: [values, first seen first]}) as of the traits:
            # identity_nodes is sorted by identifier, so finding a profile's there is a scan.
            "ALTER TABLE profile_traits ADD COLUMN identifiers JSON",
        ],
    ),
    (
        "matched records by profile",
        [
            # Every profile read asks for its matched records: a scan of every match file's
            # rows otherwise (2.6 ms with 100k of them; 0.6 ms with the index).
            "CREATE INDEX IF NOT EXISTS identity_matches_profile ON identity_matches (profile_id)",
        ],
    ),
    (
        "analytics events",
        [
            # The actions of customers, joined to their profiles (analytics/facts.py): `pid`
            # numbers a profile (analytics_profiles), `r` is the event's place in its customer's
            # history, `seq` its order of arrival, `day` its local calendar day.
            """CREATE TABLE analytics_events (
                pid        BIGINT    NOT NULL,
                r          BIGINT    NOT NULL,
                seq        BIGINT    NOT NULL,
                ts         TIMESTAMP NOT NULL,
                day        DATE      NOT NULL,
                type       VARCHAR   NOT NULL,
                event      VARCHAR,
                channel    VARCHAR   NOT NULL,
                store_id   VARCHAR,
                sku        VARCHAR,
                category   VARCHAR,
                skus       VARCHAR[],
                categories VARCHAR[],
                revenue    DOUBLE,
                order_id   VARCHAR,
                name       VARCHAR,
                properties JSON
            )""",
            "CREATE TABLE analytics_profiles (pid BIGINT NOT NULL, profile_id VARCHAR NOT NULL)",
            "CREATE TABLE analytics_state (key VARCHAR PRIMARY KEY, value VARCHAR)",
        ],
    ),
    (
        "fan levels",
        [
            # Each profile's fan level and its points as of a day (analytics/fans.py),
            # replaced by every computation.
            """CREATE TABLE fan_levels (
                profile_id  VARCHAR   NOT NULL,
                level       INTEGER   NOT NULL,
                score       INTEGER   NOT NULL,
                recency     INTEGER   NOT NULL,
                frequency   INTEGER   NOT NULL,
                monetary    INTEGER   NOT NULL,
                omnichannel INTEGER   NOT NULL,
                engagement  INTEGER   NOT NULL,
                as_of       DATE      NOT NULL,
                computed_at TIMESTAMP NOT NULL
            )""",
        ],
    ),
    (
        "lifetime value predictions",
        [
            # Each customer's BG/NBD + Gamma-Gamma figures from the last `tsunagu ltv fit`
            # (analytics/ltv.py); recency and t in periods of the fit's unit.
            """CREATE TABLE ltv_predictions (
                profile_id         VARCHAR   NOT NULL,
                frequency          BIGINT    NOT NULL,
                recency            DOUBLE    NOT NULL,
                t                  DOUBLE    NOT NULL,
                expected_purchases DOUBLE    NOT NULL,
                expected_value     DOUBLE,
                horizon_days       INTEGER   NOT NULL,
                as_of              DATE      NOT NULL,
                computed_at        TIMESTAMP NOT NULL
            )""",
        ],
    ),
    (
        "identified analytics customers",
        [
            # False for a customer known only by a receipt (a till sale without a member card).
            "ALTER TABLE analytics_profiles ADD COLUMN identified BOOLEAN DEFAULT true",
        ],
    ),
    (
        "master data every channel reads: search keys, history, stock changes",
        [
            # A product's name as search compares it (catalog/search.py): width-folded,
            # lower-case, katakana as hiragana; and its reading in hiragana (kanji read).
            """CREATE TABLE product_search (
                sku     VARCHAR PRIMARY KEY,
                norm    VARCHAR NOT NULL,
                reading VARCHAR NOT NULL
            )""",
            # Every change to a product or a store, as the row after it (`data`; NULL when
            # deleted), so that what was true on a day can be asked later.
            """CREATE TABLE master_history (
                kind       VARCHAR   NOT NULL,
                key        VARCHAR   NOT NULL,
                changed_at TIMESTAMP NOT NULL,
                data       JSON
            )""",
            # Every change of a stock figure: the quantity after it and the change itself.
            """CREATE TABLE inventory_history (
                store_id   VARCHAR   NOT NULL,
                sku        VARCHAR   NOT NULL,
                quantity   BIGINT    NOT NULL,
                delta      BIGINT,
                changed_at TIMESTAMP NOT NULL,
                source     VARCHAR   NOT NULL
            )""",
            "CREATE INDEX IF NOT EXISTS inventory_sku ON inventory (sku)",
        ],
    ),
    (
        "click-and-collect reservations",
        [
            # Stock held at a store for a customer until `expires_at` (catalog/reservations.py);
            # status held, picked_up, cancelled or expired.
            """CREATE TABLE reservations (
                reservation_id VARCHAR   PRIMARY KEY,
                profile_id     VARCHAR,
                user_id        VARCHAR,
                store_id       VARCHAR   NOT NULL,
                sku            VARCHAR   NOT NULL,
                quantity       BIGINT    NOT NULL,
                status         VARCHAR   NOT NULL,
                created_at     TIMESTAMP NOT NULL,
                expires_at     TIMESTAMP NOT NULL,
                closed_at      TIMESTAMP
            )""",
        ],
    ),
    (
        "where analytics events happened",
        [
            # context.location of the message (a beacon, the app's GPS), for "near me".
            "ALTER TABLE analytics_events ADD COLUMN lat DOUBLE",
            "ALTER TABLE analytics_events ADD COLUMN lon DOUBLE",
            # Rebuilt with them at the next question (analytics/facts.py).
            "DELETE FROM analytics_state",
        ],
    ),
    (
        "analytics customers known by an identifier",
        [
            # One identifier of each analytics customer, to follow merges of the graph.
            "ALTER TABLE analytics_profiles ADD COLUMN anchor_type VARCHAR",
            "ALTER TABLE analytics_profiles ADD COLUMN anchor_value VARCHAR",
            "DELETE FROM analytics_state",
        ],
    ),
    (
        "analytics instants",
        [
            # The place of the event's moment among its customer's moments: events at the same
            # instant share it (funnels read ties as unordered, analytics/funnels.py).
            "ALTER TABLE analytics_events ADD COLUMN instant BIGINT",
            "DELETE FROM analytics_state",
        ],
    ),
    (
        "origins of sources",
        [
            # The web origins whose browsers may send with the source's write key (CORS,
            # events/sources.py); none: server-side clients only.
            "ALTER TABLE sources ADD COLUMN origins VARCHAR[]",
        ],
    ),
    (
        "segments",
        [
            # A segment's definition (activation/segments.py) and its members as of the last
            # refresh; each entry and exit is kept in segment_changes.
            """CREATE TABLE segments (
                segment_id   VARCHAR   PRIMARY KEY,
                name         VARCHAR   NOT NULL UNIQUE,
                description  VARCHAR,
                definition   JSON      NOT NULL,
                created_at   TIMESTAMP NOT NULL,
                refreshed_at TIMESTAMP,
                members      BIGINT    NOT NULL DEFAULT 0
            )""",
            """CREATE TABLE segment_members (
                segment_id VARCHAR   NOT NULL,
                profile_id VARCHAR   NOT NULL,
                entered_at TIMESTAMP NOT NULL
            )""",
            """CREATE TABLE segment_changes (
                segment_id VARCHAR   NOT NULL,
                profile_id VARCHAR   NOT NULL,
                change     VARCHAR   NOT NULL,
                changed_at TIMESTAMP NOT NULL
            )""",
        ],
    ),
    (
        "campaigns and coupons",
        [
            # A campaign (activation/campaigns.py): what it sends, to whom, its control share
            # and the coupon it may carry (terms as JSON).
            """CREATE TABLE campaigns (
                campaign_id   VARCHAR   PRIMARY KEY,
                name          VARCHAR   NOT NULL,
                channel       VARCHAR,
                window_s      BIGINT    NOT NULL,
                control_share DOUBLE    NOT NULL,
                segment_id    VARCHAR,
                coupon        JSON,
                created_at    TIMESTAMP NOT NULL
            )""",
            # One code each (activation/coupons.py); at most one redemption, voided by a
            # cancelled receipt.
            """CREATE TABLE coupons (
                code          VARCHAR   PRIMARY KEY,
                campaign_id   VARCHAR   NOT NULL,
                profile_id    VARCHAR,
                issued_at     TIMESTAMP NOT NULL,
                redemption_id VARCHAR,
                redeemed_at   TIMESTAMP,
                store_id      VARCHAR,
                receipt_id    VARCHAR,
                amount_yen    BIGINT,
                discount_yen  BIGINT,
                voided_at     TIMESTAMP
            )""",
        ],
    ),
    (
        "campaign assignments",
        [
            # When a campaign counts from (an assignment without a time of its own) and the
            # message it sends.
            "ALTER TABLE campaigns ADD COLUMN starts_at TIMESTAMP",
            "ALTER TABLE campaigns ADD COLUMN message JSON",
            "ALTER TABLE campaigns ADD COLUMN treatments VARCHAR[]",
            # Who is in which variant of a campaign and since when (activation/assignments.py):
            # the first assignment of a customer holds; `origin` says what made it (import,
            # send, coupon, journey).
            """CREATE TABLE campaign_assignments (
                campaign_id VARCHAR   NOT NULL,
                profile_id  VARCHAR   NOT NULL,
                variant     VARCHAR   NOT NULL,
                assigned_at TIMESTAMP NOT NULL,
                origin      VARCHAR   NOT NULL,
                PRIMARY KEY (campaign_id, profile_id)
            )""",
        ],
    ),
    (
        "sends and consent",
        [
            # One row per message meant for a customer (activation/sends.py): its key makes it
            # happen once (campaign or journey, customer, trigger); the retry key goes with
            # every attempt; status queued, sending, sent, failed, suppressed, deferred.
            """CREATE TABLE sends (
                send_key    VARCHAR   PRIMARY KEY,
                campaign_id VARCHAR,
                journey_id  VARCHAR,
                profile_id  VARCHAR   NOT NULL,
                channel     VARCHAR   NOT NULL,
                purpose     VARCHAR   NOT NULL,
                status      VARCHAR   NOT NULL,
                reason      VARCHAR,
                address     VARCHAR,
                retry_key   VARCHAR   NOT NULL,
                provider_id VARCHAR,
                attempts    INTEGER   NOT NULL DEFAULT 0,
                message     JSON,
                created_at  TIMESTAMP NOT NULL,
                due_at      TIMESTAMP,
                sent_at     TIMESTAMP
            )""",
            # Consent given or withdrawn after the member import (LINE follow / unfollow, an
            # unsubscribe link), by the identifier it came with (a follower may have no profile
            # yet; profiles merge): the latest word per channel and purpose holds.
            """CREATE TABLE consents (
                id_type    VARCHAR   NOT NULL,
                id_value   VARCHAR   NOT NULL,
                channel    VARCHAR   NOT NULL,
                purpose    VARCHAR   NOT NULL,
                granted    BOOLEAN   NOT NULL,
                changed_at TIMESTAMP NOT NULL,
                source     VARCHAR   NOT NULL,
                PRIMARY KEY (id_type, id_value, channel, purpose)
            )""",
            # LINE webhook events seen (redeliveries are dropped) and account-link nonces.
            "CREATE TABLE line_webhook_events (webhook_event_id VARCHAR PRIMARY KEY, "
            "received_at TIMESTAMP NOT NULL)",
            """CREATE TABLE line_link_nonces (
                nonce      VARCHAR   PRIMARY KEY,
                member_id  VARCHAR   NOT NULL,
                created_at TIMESTAMP NOT NULL,
                used_at    TIMESTAMP
            )""",
        ],
    ),
    (
        "journeys",
        [
            # A journey's definition (activation/journeys.py), the campaign that measures it,
            # how far its event trigger has read (events.stored_at) and the last local day its
            # daily trigger ran.
            """CREATE TABLE journeys (
                journey_id  VARCHAR   PRIMARY KEY,
                name        VARCHAR   NOT NULL UNIQUE,
                status      VARCHAR   NOT NULL,
                campaign_id VARCHAR   NOT NULL,
                definition  JSON      NOT NULL,
                created_at  TIMESTAMP NOT NULL,
                cursor      TIMESTAMP,
                last_daily  DATE
            )""",
            # One customer's way through a journey (activation/journey_runner.py): the step it is
            # at (a path into the steps), when it is due, what it waits for since when.
            """CREATE TABLE journey_runs (
                run_key      VARCHAR   PRIMARY KEY,
                journey_id   VARCHAR   NOT NULL,
                profile_id   VARCHAR   NOT NULL,
                trigger_key  VARCHAR   NOT NULL,
                entered_at   TIMESTAMP NOT NULL,
                path         JSON      NOT NULL,
                status       VARCHAR   NOT NULL,
                due_at       TIMESTAMP,
                wait_started TIMESTAMP,
                context      JSON,
                updated_at   TIMESTAMP NOT NULL
            )""",
        ],
    ),
    (
        "journeys take triggers from their start",
        [
            # Events stored before a journey was created or resumed never trigger it, however
            # far back a tick re-reads (activation/journey_runner.OVERLAP).
            "ALTER TABLE journeys ADD COLUMN taken_from TIMESTAMP",
            "UPDATE journeys SET taken_from = coalesce(cursor, created_at)",
        ],
    ),
    (
        "segments follow events incrementally",
        [
            # How far a segment's members were brought up to date with the events
            # (events.stored_at): the customers of later events are looked at again, the rest
            # wait for the scheduled refresh (activation/refresher.py).
            "ALTER TABLE segments ADD COLUMN events_to TIMESTAMP",
        ],
    ),
    (
        "coupons keep their holder's identifier",
        [
            # [type, value]: the identifier "Coupon Issued" was written by, which "Coupon
            # Redeemed" is written by too, so a till need not look the holder up in the graph.
            # Coupons issued before have none; their redemption looks it up.
            "ALTER TABLE coupons ADD COLUMN holder VARCHAR[]",
        ],
    ),
    (
        "campaigns have a purpose",
        [
            # marketing (opt-in, caps, quiet hours, control groups) or service (a reservation
            # ready: only a withdrawal from the channel holds it back).
            "ALTER TABLE campaigns ADD COLUMN purpose VARCHAR DEFAULT 'marketing'",
        ],
    ),
    (
        "people sign in to the screens",
        [
            # A login with a role (admin, marketer, analyst, staff: users.py) and, for staff,
            # their store. Passwords as Argon2id hashes; sessions by the SHA-256 of their token.
            """CREATE TABLE users (
                login         VARCHAR PRIMARY KEY,
                role          VARCHAR NOT NULL,
                store_id      VARCHAR,
                password_hash VARCHAR NOT NULL,
                created_at    TIMESTAMP NOT NULL,
                disabled_at   TIMESTAMP
            )""",
            """CREATE TABLE web_sessions (
                token_hash VARCHAR PRIMARY KEY,
                login      VARCHAR NOT NULL,
                csrf       VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                expires_at TIMESTAMP NOT NULL
            )""",
        ],
    ),
    (
        "API keys expire and rotate",
        [
            # Naive UTC; NULL: never. A rotated key names its successor and expires after the
            # grace period it was given (keys.py).
            "ALTER TABLE api_keys ADD COLUMN expires_at TIMESTAMP",
            "ALTER TABLE api_keys ADD COLUMN rotated_to VARCHAR",
        ],
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)
