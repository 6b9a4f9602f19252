"""The staff back office: views over every domain, for agents and administrators."""
