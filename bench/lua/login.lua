-- POST /login as the bench user, with a visitor's CSRF cookie and token from the environment.
local body = "username=bench0000&password=bench-password&csrf_token=" .. os.getenv("VISITOR_TOKEN")
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = os.getenv("VISITOR_COOKIE")
