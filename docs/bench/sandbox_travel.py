#!/usr/bin/env python3
"""Sandbox time travel benchmark: 20 simulated users registered through the JSON API (half
pregnant, half with a child), then one journey of 1,096 days. Usage (a sandbox running):
    python3 docs/bench/sandbox_travel.py http://127.0.0.1:8080/sandbox/api
"""
import json, urllib.request, datetime, time, sys
B=sys.argv[1]
def post(p, body=None):
    req=urllib.request.Request(B+p, data=json.dumps(body or {}).encode(), headers={"content-type":"application/json"}, method="POST")
    with urllib.request.urlopen(req) as r:
        t=r.read(); return json.loads(t) if t else None
def get(p):
    with urllib.request.urlopen(B+p) as r: return json.loads(r.read())
today=datetime.date.fromisoformat(get("/clock")["date"])
t0=time.time()
for i in range(20):
    u=post("/users",{"name":f"u{i}"})["user_id"]
    post(f"/users/{u}/follow")
    if i%2==0:
        post(f"/users/{u}/say",{"text":"妊娠中"}); post(f"/users/{u}/say",{"text":f"ゆい{i}"})
        post(f"/users/{u}/postback",{"data":"date","params":{"date":str(today+datetime.timedelta(days=30+i*10))}})
    else:
        post(f"/users/{u}/say",{"text":"子育て中"}); post(f"/users/{u}/say",{"text":f"そら{i}"})
        post(f"/users/{u}/postback",{"data":"date","params":{"date":str(today-datetime.timedelta(days=i*5))}})
    post(f"/users/{u}/say",{"text":"はい"})
print("register 20 users:", round(time.time()-t0,2),"s")
t0=time.time()
r=post("/clock",{"days":1096})
print("travel 1096 days:", round(time.time()-t0,2),"s;", r["days_delivered"], "days,", r["pushes"], "pushes")
print("violations:", len(get("/violations")["violations"]))
