-- Argo CD health of a modelplane.dev/v1alpha1 ModelDeployment; installation: charts/modelplane/README.md.
-- Argo CD runs it with `obj` set and without Lua's standard libraries, so only base functions are used.
local hs = {}
local status = obj.status
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "waiting for the modelplane operator to observe the deployment"
  return hs
end
if obj.metadata.generation ~= nil and status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "generation " .. obj.metadata.generation .. " not yet observed (status is of generation "
    .. status.observedGeneration .. ")"
  return hs
end
local conditions = {}
for _, condition in ipairs(status.conditions or {}) do
  conditions[condition.type] = condition
end
local function has(kind, value)
  return conditions[kind] ~= nil and conditions[kind].status == value
end
local function describe(kind)
  local condition = conditions[kind]
  if condition.message == nil or condition.message == "" then
    return condition.reason or kind
  end
  return (condition.reason or kind) .. ": " .. condition.message
end
-- Stalled (kstatus) is set whenever Planned=False or Degraded=True; all three are read so that Argo CD and
-- Flux agree, and a status written before Stalled existed is still judged.
for _, blocked in ipairs({{"Stalled", "True"}, {"Planned", "False"}, {"Degraded", "True"}}) do
  if has(blocked[1], blocked[2]) then
    hs.status = "Degraded"
    hs.message = describe(blocked[1])
    return hs
  end
end
if has("Reconciling", "True") then
  hs.status = "Progressing"
  hs.message = describe("Reconciling")
  return hs
end
if has("Ready", "True") then
  hs.status = "Healthy"
  hs.message = describe("Ready")
  if has("PlanOutdated", "True") then
    hs.message = hs.message .. "; " .. describe("PlanOutdated")
  end
  -- Replicas that wait for free GPUs leave the placed ones serving: healthy, and the message says what waits.
  if has("ReplicasPlaced", "False") then
    hs.message = hs.message .. "; " .. describe("ReplicasPlaced")
  end
  return hs
end
hs.status = "Progressing"
if conditions.Ready ~= nil then
  hs.message = describe("Ready")
else
  hs.message = "waiting for the Ready condition"
end
return hs
