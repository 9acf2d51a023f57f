-- The registry's tables live in a database of their own, beside the sink's.
CREATE DATABASE apicurio OWNER usagestream;
