-- The insurance lead platform's tables for the database phases of examples/insurance-leads.yaml:
-- 50 agents and 5,000 leads, indexed as the seed describes (primary keys, a composite index on
-- status and product, the agent foreign key), and no index on created_at, so the reporting
-- query scans the table (the seed's "needs optimization"). Safe to run again: it loads once.
CREATE TABLE IF NOT EXISTS agents (
  id int PRIMARY KEY,
  name text NOT NULL,
  region text NOT NULL
);
CREATE TABLE IF NOT EXISTS leads (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL,
  product text NOT NULL,
  status text NOT NULL DEFAULT 'new',
  agent_id int REFERENCES agents (id),
  score int NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS leads_status_product ON leads (status, product);
CREATE INDEX IF NOT EXISTS leads_agent ON leads (agent_id);
INSERT INTO agents
  SELECT g, 'agent ' || g, (ARRAY['north', 'south', 'east', 'west'])[1 + g % 4]
  FROM generate_series(1, 50) g
  ON CONFLICT DO NOTHING;
INSERT INTO leads (name, email, product, status, agent_id, score, created_at)
  SELECT 'lead ' || g, 'lead' || g || '@example.com',
         (ARRAY['car', 'home', 'life', 'health'])[1 + g % 4],
         (ARRAY['new', 'contacted', 'qualified', 'won', 'lost'])[1 + g % 5],
         1 + g % 50, g % 100, now() - (g % 60) * interval '1 day'
  FROM generate_series(1, 5000) g
  WHERE NOT EXISTS (SELECT 1 FROM leads);
ANALYZE agents;
ANALYZE leads;
