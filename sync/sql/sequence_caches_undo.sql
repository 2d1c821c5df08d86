ALTER TABLE sync_timeentry ALTER COLUMN id SET CACHE 1;
ALTER TABLE sync_historicaltimeentry ALTER COLUMN history_id SET CACHE 1;
ALTER TABLE sync_externalref ALTER COLUMN id SET CACHE 1;
ALTER TABLE sync_historicalexternalref ALTER COLUMN history_id SET CACHE 1;
