# Splits a comma separated `message` into one event per item, tests included.
def register(params)
  @separator = params.fetch('separator', ',')
end

def filter(event)
  items = event.get('message').to_s.split(@separator)
  return [event] if items.size < 2
  items.each_with_index.map do |item, i|
    e = event.clone
    e.set('message', item.strip)
    e.set('[item][index]', i)
    e
  end
end

test "three items" do
  parameters { { 'separator' => ';' } }
  in_event { { 'message' => 'a; b ;c' } }
  expect("three events") { |events| events.size == 3 }
  expect("stripped items") { |events| events.map { |e| e.get('message') } == %w[a b c] }
  expect("indexes") { |events| events.map { |e| e.get('[item][index]') } == [0, 1, 2] }
end

test "one item passes unchanged" do
  parameters { {} }
  in_event { [{ 'message' => 'solo' }, { 'message' => 'x,y' }] }
  expect("original then two") { |events| events.map { |e| e.get('message') } == %w[solo x y] }
end
