import openai
def test_smoke(proxy):
    client = openai.OpenAI(base_url=proxy.base_url, api_key="sk-test", max_retries=0, timeout=10)
    r = client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "hello"}])
    print(r.headers)
    c = r.parse()
    print(c)
    s = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hello"}], stream=True)
    print([ch.choices[0].delta.content for ch in s if ch.choices])
    print(proxy.rows())
    with proxy.client() as h:
        print(h.get("/metrics").text[:3000])
