-- Symfony Messenger's Doctrine transport, Symfony 5.4 to 7.3.8: the table that
-- symfony/doctrine-messenger Transport/Connection.php addTableToSchema() defines (read at tags
-- v5.4.36, v6.4.0 and v7.0.4, and on the 7.1/7.2 branches), as Doctrine DBAL's
-- PostgreSQLPlatform renders it. Written by us from that function. Symfony 6.3+ declares the
-- three times DATETIME_IMMUTABLE, which adds only COMMENT ON COLUMN ... '(DC2Type:
-- datetime_immutable)' here (and, from 6.3, writes them in UTC; 5.4-6.2 write PHP's default
-- time zone). The LISTEN/NOTIFY trigger PostgreSqlConnection adds is left out: nothing we read
-- depends on it.
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
CREATE INDEX IDX_75EA56E0FB7336F0 ON messenger_messages (queue_name);
CREATE INDEX IDX_75EA56E0E3BD61CE ON messenger_messages (available_at);
CREATE INDEX IDX_75EA56E016BA31DB ON messenger_messages (delivered_at);
