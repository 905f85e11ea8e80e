-- Inbound calls (the customer_voice_order flow): who called, as identified
-- at the flow's first Passthru, so that later applet requests of the same
-- call (on any replica) read it here instead of asking Jupiter again.
CREATE TABLE inbound_calls (
    call_sid        TEXT    PRIMARY KEY,
    -- E.164; NULL when Exotel sent no CallFrom.
    phone           TEXT,
    -- vendor, rider, customer or unknown.
    kind            TEXT    NOT NULL,
    -- The store, rider or customer id in Jupiter.
    party_id        BIGINT,
    language        TEXT    NOT NULL,
    -- The order the caller's menu is about: the customer's newest active
    -- order, the rider's current delivery, the vendor's oldest pending one.
    order_id        TEXT,
    pending_orders  BIGINT  NOT NULL DEFAULT 0,
    -- 0: answered from what was known at the lookup deadline; the lookup
    -- finishes in the background and updates the row.
    settled         BOOLEAN NOT NULL,
    -- The caller's last choice at a menu (food, accept_oldest, ...).
    choice          TEXT,
    prep_minutes    BIGINT,
    started_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    -- The caller is on the line at least until then (each applet request
    -- and each Connect moves it on), unless the call has ended.
    active_until    BIGINT  NOT NULL,
    ended_at        BIGINT
);

CREATE INDEX inbound_calls_by_phone ON inbound_calls (phone, active_until);
