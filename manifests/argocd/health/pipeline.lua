-- Argo CD health of a tributary.dev/v1alpha1 Pipeline, read from the status the operator
-- writes (core/src/api/status.rs). The first rule that applies wins; tests/deploy runs
-- this file on sample objects in every phase. Lua 5.1 only (Argo CD embeds gopher-lua).
local hs = {}

local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

-- "reason: message" of a condition, or the fallback when it says nothing.
local function explain(c, fallback)
  if c == nil then
    return fallback
  end
  local text = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  if text == "" then
    return fallback
  end
  return text
end

local function describe(run)
  if run == nil then
    return "no run yet"
  end
  local text = "run " .. (run.id or "?") .. " " .. string.lower(run.phase or "unknown")
  if run.progress ~= nil then
    text = text .. " (" .. run.progress .. ")"
  end
  return text
end

local status = obj.status
local generation = obj.metadata.generation

-- Nothing observed yet, or a spec change the operator has not acted on: whatever the
-- status says describes an older spec, so it cannot be trusted yet.
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the Pipeline"
  return hs
end
if generation ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = string.format("Waiting for the operator to observe generation %d", generation)
  return hs
end

local phase = status.phase
local run = status.lastRun

-- A spec error never heals by waiting: Degraded, with the validation problems.
if phase == "Invalid" then
  hs.status = "Degraded"
  hs.message = explain(condition(status, "Valid"), "The Pipeline spec is invalid")
  return hs
end

-- A run in progress finishes even when the Pipeline is suspended.
if phase == "Running" then
  hs.status = "Progressing"
  hs.message = "Run in progress: " .. describe(run)
  return hs
end

-- Suspended: nothing new starts (Argo CD shows it like a suspended CronJob).
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Suspended; last: " .. describe(run)
  return hs
end

if phase == "Failed" then
  -- The operator reports a run cancelled by a newer one (or by a spec change) as Failed
  -- but keeps Ready=True: nothing is broken, so neither is the health.
  if run ~= nil and run.phase == "Cancelled" then
    hs.status = "Healthy"
    hs.message = describe(run)
    return hs
  end
  hs.status = "Degraded"
  hs.message = explain(condition(status, "Succeeded"), describe(run))
  return hs
end

if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = describe(run)
  return hs
end

if phase == "Pending" then
  -- A scheduled Pipeline may wait days for its first run and is fine meanwhile; an
  -- unscheduled one starts its run at once, so waiting means work is on its way.
  if obj.spec ~= nil and obj.spec.schedule ~= nil and obj.spec.schedule ~= "" then
    hs.status = "Healthy"
    if status.nextRunAt ~= nil then
      hs.message = "Waiting for the schedule; next run at " .. status.nextRunAt
    else
      hs.message = "Waiting for the schedule"
    end
    return hs
  end
  hs.status = "Progressing"
  hs.message = "Waiting for the first run"
  return hs
end

-- An operator newer than this script may add phases: fall back on the Ready condition.
local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
elseif ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = explain(ready, "Phase " .. tostring(phase))
return hs
