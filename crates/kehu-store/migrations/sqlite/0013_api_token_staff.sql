-- An API token may act for a staff member (`kehu api-token create NAME --staff ID`): the
-- API then records that staff member as the one who reviewed a read, recorded a dunning
-- step or approved a disconnection order, within the permissions of their role.
ALTER TABLE api_tokens ADD COLUMN staff_id TEXT;
