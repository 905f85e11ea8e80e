-- Live-feed readers (GET /comms/events/stream) in every replica wake on
-- this notification instead of polling. One per inserting statement; the
-- notifications of one transaction fold into one and are delivered when it
-- commits, so a reader never looks before the rows are visible.
CREATE OR REPLACE FUNCTION mangwale_notify_events() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('mangwale_events', '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER timeline_events_notify
    AFTER INSERT ON timeline_events
    FOR EACH STATEMENT EXECUTE FUNCTION mangwale_notify_events();
