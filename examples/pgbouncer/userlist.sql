-- Writes PgBouncer's auth_file from the server's own SCRAM secrets (run as a superuser):
--   psql -XAt -f userlist.sql > userlist.txt
-- List the roles the applications log in as; the secrets must stay identical to pg_authid's.
SELECT format('"%s" "%s"', replace(rolname, '"', '""'), rolpassword)
FROM pg_authid
WHERE rolname IN ('app') AND rolcanlogin AND rolpassword LIKE 'SCRAM-SHA-256$%';
