-- Argo CD health check for every Vireo kind (vireo.dev/v1alpha1: VirtualMachine, Host, HostCluster,
-- HAPolicy, Fault, RecoveryPlan). Vireo's conditions follow kstatus, so one script reads them all
-- (docs/argocd.md):
--   status not yet written, or observedGeneration behind metadata.generation  -> Progressing
--   Stalled=True (cannot get there without a change: unschedulable, failed,
--                 a RecoveryPlan Failed or WaitingForUser)                    -> Degraded
--   Ready=True on a Host in maintenance (taken out of service on purpose)     -> Suspended
--   Ready=True (the declared state is reached; a Halted VM that is stopped,
--               a RecoveryPlan that Succeeded)                                -> Healthy
--   Reconciling=True, or Ready not yet True                                   -> Progressing
-- Lua 5.1, the dialect Argo CD embeds; `obj` is the object.
local hs = {}

local function condition(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    if c.reason ~= nil and c.reason ~= "" then
      return c.reason .. ": " .. c.message
    end
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for Vireo to report status"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for Vireo to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end

local ready = condition("Ready")
local reconciling = condition("Reconciling")
if ready ~= nil and ready.status == "True" and (reconciling == nil or reconciling.status ~= "True") then
  if obj.kind == "Host" and obj.spec ~= nil and obj.spec.maintenance == true then
    hs.status = "Suspended"
    hs.message = describe(ready, "In maintenance")
    return hs
  end
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end

hs.status = "Progressing"
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling, "Reconciling")
else
  hs.message = describe(ready, "Waiting for Ready")
end
return hs
