-- Symfony Messenger's Doctrine transport, Symfony 7.3.9 and later (7.4, 8.x): the same table as
-- symfony_messenger_5_4.sql, but addTableToSchema() (symfony/doctrine-messenger
-- Transport/Connection.php) replaces the three one-column indexes by one composite index on
-- (queue_name, available_at, delivered_at, id); Doctrine names it from the column hashes as
-- below, the name `doctrine:migrations:diff` produces when an app upgrades. Written by us from
-- that definition, rendered by Doctrine DBAL's PostgreSQLPlatform. Times are UTC (since 6.3).
-- The LISTEN/NOTIFY trigger is left out.
CREATE TABLE messenger_messages (
    id BIGSERIAL NOT NULL,
    body TEXT NOT NULL,
    headers TEXT NOT NULL,
    queue_name VARCHAR(190) NOT NULL,
    created_at TIMESTAMP(0) WITHOUT TIME ZONE NOT NULL,
    available_at TIMESTAMP(0) WITHOUT TIME ZONE NOT NULL,
    delivered_at TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT NULL,
    PRIMARY KEY(id)
);
CREATE INDEX IDX_75EA56E0FB7336F0E3BD61CE16BA31DBBF396750
    ON messenger_messages (queue_name, available_at, delivered_at, id);
COMMENT ON COLUMN messenger_messages.created_at IS '(DC2Type:datetime_immutable)';
COMMENT ON COLUMN messenger_messages.available_at IS '(DC2Type:datetime_immutable)';
COMMENT ON COLUMN messenger_messages.delivered_at IS '(DC2Type:datetime_immutable)';
