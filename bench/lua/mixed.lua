-- The mixed workload: 90 % page views, 5 % searches, 4 % saves, 1 % logins.
-- Each wrk thread edits a page of its own: it GETs the editor for the current base revision,
-- then POSTs a save; views of random pages fill the slots while those are in flight.
local pages = tonumber(os.getenv("PAGES"))
local member_cookie = os.getenv("MEMBER_COOKIE")
local member_token = os.getenv("MEMBER_TOKEN")
local visitor_cookie = os.getenv("VISITOR_COOKIE")
local visitor_token = os.getenv("VISITOR_TOKEN")
-- MIX_LOGINS=0 sends a page view in the login slot (to see what the logins cost the rest).
local with_logins = os.getenv("MIX_LOGINS") ~= "0"
local words = { "garden", "river", "lantern", "compass", "journal", "archive" }
local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local n, base, getting, saving = 0, nil, false, false
saves, views, searches, logins, failed = 0, 0, 0, 0, 0

local function own_page()
  return string.format("/wiki/Page%%20%06d", 100 + id)
end

local function view()
  views = views + 1
  return wrk.format("GET", string.format("/wiki/Page%%20%06d", (n * 7919) % (pages - 1) + 1))
end

request = function()
  n = n + 1
  local slot = n % 100
  if slot < 4 then
    if base and not saving then
      saving = true
      local body = "content=Save+" .. n .. "+of+thread+" .. id .. "&summary=bench&base_revision=" .. base .. "&csrf_token=" .. member_token
      base = nil
      return wrk.format("POST", own_page() .. "/edit",
        { ["Cookie"] = member_cookie, ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
    elseif not base and not getting and not saving then
      getting = true
      return wrk.format("GET", own_page() .. "/edit", { ["Cookie"] = member_cookie })
    end
    return view()
  elseif slot < 9 then
    searches = searches + 1
    return wrk.format("GET", "/search?q=" .. words[(n % #words) + 1])
  elseif slot < 10 and with_logins then
    logins = logins + 1
    return wrk.format("POST", "/login", { ["Cookie"] = visitor_cookie, ["Content-Type"] = "application/x-www-form-urlencoded" },
      "username=bench0000&password=bench-password&csrf_token=" .. visitor_token)
  end
  return view()
end

response = function(status, headers, body)
  if getting then
    local found = string.match(body, 'name="base_revision" value="(%d+)"')
    if found then
      base = found
      getting = false
      return
    end
  end
  if saving then
    local location = headers["location"] or headers["Location"] or ""
    if status == 303 and string.sub(location, 1, 6) == "/wiki/" then
      saving = false
      saves = saves + 1
    elseif status == 409 or status == 422 or status == 403 then
      saving = false
      failed = failed + 1
    end
  end
  if status >= 500 then failed = failed + 1 end
end

done = function(summary, latency, requests)
  local s, v, q, l, f = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("saves"); v = v + t:get("views"); q = q + t:get("searches"); l = l + t:get("logins"); f = f + t:get("failed")
  end
  io.write(string.format("MIX saves=%d views=%d searches=%d logins=%d failed=%d\n", s, v, q, l, f))
end
