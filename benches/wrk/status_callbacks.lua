-- wrk: form-encoded terminal status callbacks, as Exotel posts them, each
-- with its own CallSid (a per-run prefix from wrk's arguments and a counter).
local prefix, n = "wrk", 0
function init(args) prefix = args[1] or prefix end
function request()
  n = n + 1
  local body = "CallSid=" .. prefix .. "x" .. n ..
    "&EventType=terminal&Status=completed&DateUpdated=2026-11-23+10%3A30%3A04" ..
    "&From=09876543210&To=08047112233&ConversationDuration=42&Direction=outbound-api&CustomField=c%3Abench" ..
    "&Legs%5B0%5D%5BStatus%5D=completed&Legs%5B0%5D%5BOnCallDuration%5D=44" ..
    "&Legs%5B1%5D%5BStatus%5D=completed&Legs%5B1%5D%5BOnCallDuration%5D=42"
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
