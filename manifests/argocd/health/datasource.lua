-- Argo CD health of a tributary.dev/v1alpha1 DataSource: its Ready condition, which the
-- operator sets from a connection-check Job (core/src/api/status.rs). tests/deploy runs
-- this file on sample objects. Lua 5.1 only (Argo CD embeds gopher-lua).
local hs = {}

local status = obj.status
local generation = obj.metadata.generation

if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to check the connection"
  return hs
end
if generation ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = string.format("Waiting for the operator to check generation %d", generation)
  return hs
end

local ready = nil
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "Ready" then
      ready = c
    end
  end
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the first connection check"
  return hs
end

local text = ready.reason or ""
if ready.message ~= nil and ready.message ~= "" then
  text = text .. ": " .. ready.message
end

if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status == "False" then
  -- ConnectionFailed or InvalidSpec: Pipelines that use this source will fail too.
  hs.status = "Degraded"
else
  -- Unknown: a check Job is running (reason Checking).
  hs.status = "Progressing"
end
hs.message = text
return hs
