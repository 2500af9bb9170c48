import CMallocCounter
print("allocations so far: \(aiot_malloc_count())")
