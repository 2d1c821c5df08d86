-- pipeline_delivery's ids, cached as sequence_caches.sql explains (migration pipeline 0001).
ALTER TABLE pipeline_delivery ALTER COLUMN id SET CACHE 1000;
