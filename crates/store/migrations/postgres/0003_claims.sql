-- 0003: a new order is written in one statement (its idempotency key,
-- external ids, row and first event, as data-modifying CTEs) and so in one
-- round trip. When the key or an identifier turns out to be taken, this
-- raises, which rolls the whole statement back: nothing of the order stays.
-- ordo reads the SQLSTATE (OR001: the key, OR002: an identifier).

CREATE FUNCTION ordo_claims_held(key_held boolean, ids_held boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT key_held THEN
        RAISE EXCEPTION 'the idempotency key is taken' USING ERRCODE = 'OR001';
    END IF;
    IF NOT ids_held THEN
        RAISE EXCEPTION 'an external identifier is taken' USING ERRCODE = 'OR002';
    END IF;
    RETURN true;
END
$$;
