-- LISTEN/NOTIFY fast path for the LMS <-> Zulip bridge (docs/provisioning.md).
--
-- Installed ONCE by the LMS's DBA, as the owner of the students and mentors tables. It adds
-- AFTER triggers that send, at commit, one notification per changed person on the channel
-- lms_people_changed with the payload '<subject> <epoch seconds>', e.g. 'student:42 1764030000.5'.
-- The bridge only LISTENs (its role stays read-only); with PROVISION_NOTIFY=true it re-reads
-- the people named within about a second, instead of waiting for the next snapshot.
-- Safe to run again (CREATE OR REPLACE / DROP TRIGGER IF EXISTS). Remove with the DROP lines
-- at the end.

CREATE OR REPLACE FUNCTION lms_bridge_notify_person() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    kind text := CASE TG_TABLE_NAME WHEN 'students' THEN 'student' ELSE 'mentor' END;
    row_id integer := CASE TG_OP WHEN 'DELETE' THEN OLD.id ELSE NEW.id END;
BEGIN
    PERFORM pg_notify('lms_people_changed',
                      kind || ':' || row_id || ' ' || extract(epoch FROM clock_timestamp()));
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS lms_bridge_notify ON students;
CREATE TRIGGER lms_bridge_notify
    AFTER INSERT OR DELETE OR UPDATE OF email, first_name, last_name, display_name, is_active,
        batch_id
    ON students FOR EACH ROW EXECUTE FUNCTION lms_bridge_notify_person();

DROP TRIGGER IF EXISTS lms_bridge_notify ON mentors;
CREATE TRIGGER lms_bridge_notify
    AFTER INSERT OR DELETE OR UPDATE OF email, first_name, last_name, display_name
    ON mentors FOR EACH ROW EXECUTE FUNCTION lms_bridge_notify_person();

-- To remove:
-- DROP TRIGGER IF EXISTS lms_bridge_notify ON students;
-- DROP TRIGGER IF EXISTS lms_bridge_notify ON mentors;
-- DROP FUNCTION IF EXISTS lms_bridge_notify_person();
